"""The local page: what each machine hears, its score against the threshold, its events.

Off by default (`web.enabled`); on 127.0.0.1:8080 when enabled; any other address needs a
password (HTTP Basic; edge_asd.config.schema.WebConfig). Served by waitress on its own
threads inside the daemon (edge_asd.web.server); the page is one HTML file, one CSS file
and one script (edge_asd/web/static), no toolchain, nothing loaded from elsewhere; it polls
the JSON below every 1-2 s. All times are Unix seconds (UTC), scores in the scorer's units,
levels in dB.

    GET /api/status
        {device_id, version, time, health: "ok" | "degraded", health_problems: [str],
         hop_seconds, uptime_seconds, windows_scored, windows_skipped, windows_lost,
         input_overflows, inference_ms_p50, inference_ms_p95, engine,
         engine_fallback_reason, outbox_depth, outbox_dropped, mqtt_connected,
         mqtt_last_error, inputs: {source: {state, reason, ...}}}
    GET /api/machines?since=T
        {machines: [summary]}: every machine, each with the last 2 minutes of its trace
        (only the windows after T when given).
        summary = {name, source, state (normal | anomaly | unknown | maintenance), why,
         threshold, score, k, n, level_offset_db (median of recent windows minus the
         calibration's level), latest_level_offset_db, calibration_level_db, alarms,
         windows_scored, trace: [[time, score, threshold], ...] oldest first}
    GET /api/machines/{name}?since=T
        summary with the trace after T (all of the last 10 minutes without it), plus
        calibration: {created_at, scorer, level_db, expected_false_alarms_per_day,
        detectability: {fault kind: {levels_db, windows_above, event_probability,
        detected_from_db}}}
    GET /api/machines/{name}/spectrogram
        the latest window's log-mel (the model's front end, edge_asd.melspec) pooled to
        64 bands x 156 frames: {time, db_max, range_db, seconds, max_hz, values: rows from
        the lowest band, 0..255 over range_db below db_max}; 404 before the first window
    GET /api/events?machine=NAME&limit=50
        {events: [{machine, folder, event (the event's latest MQTT payload), files,
         urls: {file: url}}]} newest first (edge_asd.evidence.listing)
    GET /api/evidence/{machine}/{folder}/{event.json | start.flac | peak.flac | event.png}

Errors are JSON {error: str} with 400 (a bad query value) or 404; 401 without the
password when one is set; 403 for another host name than localhost without one
(edge_asd.web.server.LoopbackHostOnly); 413 for a request with a body.
"""

from edge_asd.web.server import WebServer, close_web, start_web

__all__ = ["WebServer", "close_web", "start_web"]
