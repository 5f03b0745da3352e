-- Compressed blocks of 4 to 64 KiB (ClickHouse's default: 64 KiB to 1 MiB) in the per-video stats table.
-- Its granules are at most 64 KiB of all columns together (0060), most of it the unique-viewer
-- states, so a granule of a small column holds a few KiB, and reading it meant decompressing
-- a block of up to 1 MiB around it. Over bench:api's 100M-event day merged into one part, a
-- batch of 16 videos' open days took 8.2-9.3 against 12.6-13.5 ms (p50 of 40 batches, three
-- runs in alternation) and the platform's top 10 about 175 against 240 ms; the nightly job
-- 4.85 / 8.72 against 4.84 / 8.60 s; the table 2.4 % larger. Parts written before take it
-- as they are merged.
ALTER TABLE video_stats_per_week MODIFY SETTING min_compress_block_size = 4096, max_compress_block_size = 65536
