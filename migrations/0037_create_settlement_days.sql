-- The visible result of each settled day: its latest committed run.
CREATE VIEW IF NOT EXISTS settlement_days AS
SELECT
    day,
    run_id,
    status,
    rate_card_version,
    pricing_mode,
    finished_at,
    video_lines,
    ad_lines,
    views,
    video_revenue_krw,
    ad_impressions,
    ad_revenue_krw,
    checksum
FROM settlement_runs FINAL
WHERE state = 'committed'
ORDER BY day ASC, run_id DESC
LIMIT 1 BY day
COMMENT 'One row per settled day: the committed run whose lines are visible, its status (provisional or final) and totals'
