package epicsim

import (
	"fmt"
	"time"
)

// deletions are resources deleted on the simulated server (Delete), and
// the export-file expiry fault (FHIRSim.mu).
type deletions struct {
	at      map[string]time.Time // Type/id → when deleted
	expire  bool                 // the next export file request finds the files expired
	expired int                  // manifests expired so far
}

// Delete removes the resource Type/id from later exports; an export with
// _since before now lists it in the manifest's deleted files (a
// transaction Bundle with a DELETE entry per line, Bulk Data v2).
func (s *FHIRSim) Delete(typ, id string) error {
	if _, ok := s.byKey[typ+"/"+id]; !ok {
		return fmt.Errorf("epicsim: no %s/%s", typ, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.del.at == nil {
		s.del.at = map[string]time.Time{}
	}
	s.del.at[typ+"/"+id] = s.now()
	return nil
}

// ExpireExportFiles makes the next export file request find every job's
// files expired (404): the client must fetch the manifest again, which
// is then rebuilt with new file URLs.
func (s *FHIRSim) ExpireExportFiles() { s.mu.Lock(); s.del.expire = true; s.mu.Unlock() }

// ExpiredManifests is how many manifests the fault expired.
func (s *FHIRSim) ExpiredManifests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.del.expired }

// deletedLine is one line of a deleted file: a transaction Bundle with
// one DELETE entry.
func deletedLine(key string) []byte {
	return fmt.Appendf(nil, `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"%s"}}]}`, key)
}
