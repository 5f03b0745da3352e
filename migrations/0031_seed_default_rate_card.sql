-- The default rate card of SPEC 7, effective since the beginning, unless version 1 exists already.
INSERT INTO rate_cards (version, effective_from, mode, tier_floors, video_rates_tenths, ad_rates_tenths, note, created_at)
SELECT
    1,
    toDate('1970-01-01'),
    'graduated',
    [0, 100000, 500000, 1000000],
    [10, 11, 13, 15],
    [100, 120, 150, 200],
    'default rate card of SPEC 7',
    now64(3)
WHERE (SELECT count() FROM rate_cards WHERE version = 1) = 0
