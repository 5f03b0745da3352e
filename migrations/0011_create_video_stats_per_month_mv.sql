-- Feeds video_stats_per_month from each block written to video_stats_per_day (days are
-- already in SETTLEMENT_TZ, so the month of a day needs no time zone). Reading the
-- daily block instead of every raw row halves the cost of an insert into raw_events.
CREATE MATERIALIZED VIEW IF NOT EXISTS video_stats_per_month_mv TO video_stats_per_month AS
SELECT
    toStartOfMonth(day) AS month,
    creator_id,
    video_id,
    toUInt64(sum(views)) AS views,
    toUInt64(sum(watch_ms)) AS watch_ms,
    toUInt64(sum(ad_impressions)) AS ad_impressions,
    toUInt64(sum(excluded_self_view)) AS excluded_self_view,
    toUInt64(sum(excluded_duplicate_viewer)) AS excluded_duplicate_viewer,
    toUInt64(sum(excluded_duplicate_ip)) AS excluded_duplicate_ip,
    uniqExactMergeState(unique_viewers) AS unique_viewers
FROM video_stats_per_day
GROUP BY month, creator_id, video_id
