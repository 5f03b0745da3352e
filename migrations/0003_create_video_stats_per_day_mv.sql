-- Feeds video_stats_per_day from every insert into raw_events.
CREATE MATERIALIZED VIEW IF NOT EXISTS video_stats_per_day_mv TO video_stats_per_day AS
SELECT
    toDate(event_time, {{SETTLEMENT_TZ}}) AS day,
    creator_id,
    video_id,
    toUInt64(countIf(type = 'play' AND outcome = 'counted')) AS views,
    toUInt64(sumIf(credited_watch_ms, type = 'progress' AND outcome = 'counted')) AS watch_ms,
    toUInt64(countIf(type = 'ad_impression' AND outcome = 'counted')) AS ad_impressions,
    toUInt64(countIf(type = 'play' AND reason = 'self_view')) AS excluded_self_view,
    toUInt64(countIf(type = 'play' AND reason = 'duplicate_viewer')) AS excluded_duplicate_viewer,
    toUInt64(countIf(type = 'play' AND reason = 'duplicate_ip')) AS excluded_duplicate_ip,
    uniqExactStateIf(cityHash64(viewer_id), type = 'play' AND outcome = 'counted') AS unique_viewers
FROM raw_events
WHERE outcome IN ('counted', 'excluded')
GROUP BY day, creator_id, video_id
