-- Feeds ad_impressions_per_month from every insert into raw_events.
CREATE MATERIALIZED VIEW IF NOT EXISTS ad_impressions_per_month_mv TO ad_impressions_per_month AS
SELECT
    toStartOfMonth(event_time, {{SETTLEMENT_TZ}}) AS month,
    creator_id,
    video_id,
    ad_id,
    toUInt64(count()) AS impressions
FROM raw_events
WHERE type = 'ad_impression' AND outcome = 'counted'
GROUP BY month, creator_id, video_id, ad_id
