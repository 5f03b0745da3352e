-- One line per video and day and run: the day's views, watch time and video revenue.
CREATE TABLE IF NOT EXISTS settlement_video_lines
(
    day Date COMMENT 'Settled day in SETTLEMENT_TZ',
    run_id UInt64 COMMENT 'Run that wrote the line; only the day''s latest committed run (settlement_days) is visible',
    status LowCardinality(String) COMMENT 'provisional or final, as the run settled the day',
    creator_id String COMMENT 'Creator of the video',
    video_id String COMMENT 'Video id',
    views UInt64 COMMENT 'Counted views on the day (the daily view count reports rely on)',
    watch_ms UInt64 COMMENT 'Credited watch time on the day, ms',
    ad_impressions UInt64 COMMENT 'Counted ad impressions on the day, all ads of the video',
    views_before UInt64 COMMENT 'Lifetime counted views of the video before the day, as settled',
    views_after UInt64 COMMENT 'Lifetime counted views of the video after the day (views_before + views)',
    rate_card_version UInt32 COMMENT 'Rate card the line was priced with',
    pricing_mode LowCardinality(String) COMMENT 'graduated or volume',
    revenue_tenths UInt64 COMMENT 'Exact video revenue of the line, tenths of a won',
    revenue_krw UInt64 COMMENT 'Video revenue truncated to whole won (intDiv(revenue_tenths, 10)); totals sum this',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the run computed the line'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, run_id, creator_id, video_id)
COMMENT 'Settlement per video and day; filter to the runs of settlement_days'
