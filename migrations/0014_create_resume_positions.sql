-- Latest playback position per (viewer, video); an `end` event resets it to 0.
CREATE TABLE IF NOT EXISTS resume_positions
(
    viewer_id String COMMENT 'Logged-in user id or anonymous device id',
    video_id String COMMENT 'Video id',
    position_ms UInt64 COMMENT 'Position to resume from (ms); 0 after the video ended',
    updated_at DateTime64(3, 'UTC') COMMENT 'Client time of the event that set the position; the latest wins'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (viewer_id, video_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Resume positions, written back from the raw events (read with argMax(position_ms, updated_at) or FINAL)'
