-- Must be the first statement of a transaction: from here on PostgreSQL refuses any write in it.
SET TRANSACTION READ ONLY
