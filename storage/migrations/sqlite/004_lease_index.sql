-- Every event renews its video's lease. With lease_expires_at indexed, each
-- event's UPDATE of its video also wrote an entry into every index of the
-- videos table (PostgreSQL updates a row in place, "HOT", only when no
-- indexed column changes). Expired leases are looked for once a second
-- among the unfinished videos, through videos_unfinished_idx, which costs
-- far less than that.
DROP INDEX videos_leased;
