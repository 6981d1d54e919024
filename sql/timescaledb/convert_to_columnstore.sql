CALL convert_to_columnstore(CAST(:chunk AS regclass), if_not_columnstore => true)
