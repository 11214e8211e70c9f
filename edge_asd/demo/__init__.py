"""`edge-asd demo`: the whole chain on generated machine sound.

scenario.py   what is played: the machine, the faults and when they happen
model.py      the demo model: trained once on generated sound, then cached
live.py       the MQTT subscriber: live view, alerts with their delay, the summary
plot.py       the score trace PNG
run.py        the orchestration: model, calibration, broker, daemon, subscriber
"""
