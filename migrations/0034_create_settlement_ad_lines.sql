-- One line per (video, ad) and day and run: the impressions of one ad on one video and their revenue.
CREATE TABLE IF NOT EXISTS settlement_ad_lines
(
    day Date COMMENT 'Settled day in SETTLEMENT_TZ',
    run_id UInt64 COMMENT 'Run that wrote the line; only the day''s latest committed run (settlement_days) is visible',
    status LowCardinality(String) COMMENT 'provisional or final, as the run settled the day',
    creator_id String COMMENT 'Creator of the video',
    video_id String COMMENT 'Video the ad ran on',
    ad_id String COMMENT 'Ad id',
    impressions UInt64 COMMENT 'Counted impressions of the ad on the video on the day',
    impressions_before UInt64 COMMENT 'Lifetime counted impressions of the ad on the video before the day, as settled',
    impressions_after UInt64 COMMENT 'Lifetime counted impressions of the ad on the video after the day',
    rate_card_version UInt32 COMMENT 'Rate card the line was priced with',
    pricing_mode LowCardinality(String) COMMENT 'graduated or volume',
    revenue_tenths UInt64 COMMENT 'Exact ad revenue of the line, tenths of a won',
    revenue_krw UInt64 COMMENT 'Ad revenue truncated to whole won (intDiv(revenue_tenths, 10)); totals sum this',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the run computed the line'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, run_id, creator_id, video_id, ad_id)
COMMENT 'Settlement per (video, ad) and day; filter to the runs of settlement_days'
