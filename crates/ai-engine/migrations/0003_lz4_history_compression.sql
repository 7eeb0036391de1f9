-- Every request writes its body and answer to `prediction_history` as jsonb, and those values
-- are large enough to be compressed on insert. PostgreSQL's default, pglz, cost more CPU on the
-- shared cores than the rest of the insert; lz4 compresses several times faster. A server built
-- without lz4 keeps pglz (the columns then stay as they were).
DO $$
BEGIN
    ALTER TABLE prediction_history
        ALTER COLUMN input_data SET COMPRESSION lz4,
        ALTER COLUMN prediction SET COMPRESSION lz4,
        ALTER COLUMN features SET COMPRESSION lz4,
        ALTER COLUMN metadata SET COMPRESSION lz4;
    ALTER TABLE training_data ALTER COLUMN features SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available: history columns keep the default compression';
END;
$$;
