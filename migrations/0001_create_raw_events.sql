-- Every playback event the edge received, once per event id, with the outcome the
-- counting rules gave it. Rejected events are kept too (never counted).
CREATE TABLE IF NOT EXISTS raw_events
(
    event_id UUID COMMENT 'Client-generated event id, the idempotency key (random UUID for events that failed validation)',
    received_at DateTime64(3, 'UTC') COMMENT 'Server time the edge received the event',
    event_time DateTime64(3, 'UTC') COMMENT 'Client time of the event (ts); aggregates bucket by this in SETTLEMENT_TZ',
    type LowCardinality(String) COMMENT 'play, progress, pause, seek, end or ad_impression (as sent, for rejected events)',
    outcome LowCardinality(String) COMMENT 'counted (adds to an aggregate), stored (accepted, counts nothing), excluded (abuse rule), rejected (invalid)',
    reason LowCardinality(String) COMMENT 'Why excluded, rejected or merely stored (self_view, duplicate_viewer, duplicate_ip, repeat_play, duplicate_impression, future_timestamp, too_late, ad_not_served, invalid_event, ...); empty otherwise',
    video_id String COMMENT 'Video from the playback token',
    creator_id String COMMENT 'Creator of the video, from the playback token',
    viewer_id String COMMENT 'Logged-in user id or anonymous device id, from the playback token',
    session_id String COMMENT 'Playback session id, from the playback token',
    ip String COMMENT 'Client IP address as seen by the edge',
    position_ms UInt64 COMMENT 'Playback position in the video (ms)',
    watched_ms UInt64 COMMENT 'Playing time since the previous event as the client reported it (progress only)',
    credited_watch_ms UInt64 COMMENT 'Watch time credited after the clamp of SPEC 5 (progress events with outcome counted)',
    ad_id String COMMENT 'Ad of an ad_impression event; empty otherwise',
    video_duration_ms UInt64 COMMENT 'Video duration from the playback token',
    payload String COMMENT 'The event as received, kept only for events that failed validation',
    insert_token String COMMENT 'Dedup token of the edge flush that wrote the row (one per insert; a repaired flush repeats it)'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (video_id, session_id, event_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Raw playback events from the ingest edge, one row per event id'
