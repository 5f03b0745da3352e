-- Counted ad impressions per (video, ad) and month in SETTLEMENT_TZ, kept by ad_impressions_per_month_mv.
CREATE TABLE IF NOT EXISTS ad_impressions_per_month
(
    month Date COMMENT 'First day of the month in SETTLEMENT_TZ',
    creator_id String COMMENT 'Creator of the video',
    video_id String COMMENT 'Video the ad ran on',
    ad_id String COMMENT 'Ad id',
    impressions UInt64 COMMENT 'Counted impressions (read with sum())'
)
ENGINE = SummingMergeTree(impressions)
ORDER BY (month, creator_id, video_id, ad_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Counted ad impressions per video, ad and month'
