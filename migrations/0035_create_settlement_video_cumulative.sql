-- Lifetime views per video as of its latest final day, so a run reads one row per video
-- instead of every past line.
CREATE TABLE IF NOT EXISTS settlement_video_cumulative
(
    video_id String COMMENT 'Video id',
    day Date COMMENT 'Final day the count is as of (the latest row per video wins)',
    views_after UInt64 COMMENT 'Lifetime counted views of the video after that day, as settled'
)
ENGINE = ReplacingMergeTree(day)
ORDER BY video_id
COMMENT 'Lifetime settled views per video, folded in from final settlement days (read with argMax(views_after, day))'
