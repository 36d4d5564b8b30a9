package fusionsim

// TxnDFFIn lets the external tests check the DFF segment codes.
type TxnDFFIn = txnDFFIn
