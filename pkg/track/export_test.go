package track

// SetWatermark rewinds (or advances) idx's watermark: tests re-index
// records already indexed.
func SetWatermark(idx *Index, seq uint64) error { return idx.newBatch().commit(seq) }
