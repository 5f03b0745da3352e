-- Feeds ad_impressions_per_month from each block written to ad_impressions_per_day.
CREATE MATERIALIZED VIEW IF NOT EXISTS ad_impressions_per_month_mv TO ad_impressions_per_month AS
SELECT
    toStartOfMonth(day) AS month,
    creator_id,
    video_id,
    ad_id,
    toUInt64(sum(impressions)) AS impressions
FROM ad_impressions_per_day
GROUP BY month, creator_id, video_id, ad_id
