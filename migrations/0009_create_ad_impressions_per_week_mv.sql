-- Feeds ad_impressions_per_week from each block written to ad_impressions_per_day.
CREATE MATERIALIZED VIEW IF NOT EXISTS ad_impressions_per_week_mv TO ad_impressions_per_week AS
SELECT
    toMonday(day) AS week,
    creator_id,
    video_id,
    ad_id,
    toUInt64(sum(impressions)) AS impressions
FROM ad_impressions_per_day
GROUP BY week, creator_id, video_id, ad_id
