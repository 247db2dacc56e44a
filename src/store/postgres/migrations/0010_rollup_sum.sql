-- An exact bigint sum for the usage reports. PostgreSQL's sum(bigint) returns numeric (it
-- accumulates in 128 bits, then converts every group's result to an arbitrary-precision
-- number, which the reports cast back to bigint): with nine sums per group that conversion was
-- about a third of a 20,000-group report (1 day in minutes grouped by API key, 10 million
-- events). This one adds with bigint's own + (int8pl), which raises "bigint out of range" on
-- an overflow instead of wrapping, exactly where the cast of the numeric sum would have
-- failed. int8pl is strict, so the first row's value starts the sum and a group of one row
-- costs no addition. Safe in parallel plans: the partial sums combine with the same +.
CREATE AGGREGATE gh_bigint_sum(bigint) (
    SFUNC = int8pl,
    STYPE = bigint,
    COMBINEFUNC = int8pl,
    PARALLEL = SAFE
);
