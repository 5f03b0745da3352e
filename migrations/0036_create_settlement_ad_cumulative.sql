-- Lifetime impressions per (video, ad) as of its latest final day.
CREATE TABLE IF NOT EXISTS settlement_ad_cumulative
(
    video_id String COMMENT 'Video the ad ran on',
    ad_id String COMMENT 'Ad id',
    day Date COMMENT 'Final day the count is as of (the latest row per video and ad wins)',
    impressions_after UInt64 COMMENT 'Lifetime counted impressions of the ad on the video after that day, as settled'
)
ENGINE = ReplacingMergeTree(day)
ORDER BY (video_id, ad_id)
COMMENT 'Lifetime settled impressions per (video, ad), folded in from final settlement days (read with argMax(impressions_after, day))'
