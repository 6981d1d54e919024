-- Feature rows of one feature set in [start, end): the features asset's dagster/row_count.
SELECT count(*) FROM features WHERE time >= :start AND time < :end AND feature_set = :feature_set
