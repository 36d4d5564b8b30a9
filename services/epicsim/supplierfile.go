package epicsim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/supplierfile"
)

// receiveSupplierFile takes one supplier reference file Sinew renamed into
// dir on the SFTP share (pkg/supplierfile), as Willow's and Beaker's file
// interface does: the whole file is applied or refused, the answer is a
// result file beside it (<name>.ack), and the file itself moves to done/.
// The inbound faults apply as to MLLP: drop writes no result, ae and ar
// answer so, delay answers late.
func (pm *ProviderMaster) receiveSupplierFile(dir, name string, log zerolog.Logger) {
	if !strings.HasSuffix(name, ".txt") {
		return
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		log.Warn().Err(err).Str("file", name).Msg("supplier file not read")
		return
	}
	res, delim, f := pm.applySupplierFile(data)
	if f.Mode == "drop" {
		return
	}
	if f.Mode == "delay" {
		time.Sleep(f.Delay)
	}
	if err := os.MkdirAll(filepath.Join(dir, "done"), 0o750); err == nil {
		_ = os.Rename(filepath.Join(dir, name), filepath.Join(dir, "done", name))
	}
	out := filepath.Join(dir, supplierfile.ResultName(name))
	if err := os.WriteFile(out+".part", supplierfile.BuildResult(res, delim), 0o644); err != nil {
		log.Warn().Err(err).Str("file", name).Msg("supplier result not written")
		return
	}
	if err := os.Rename(out+".part", out); err != nil {
		log.Warn().Err(err).Str("file", name).Msg("supplier result not written")
	}
}

// applySupplierFile applies a file's suppliers (add or update by number)
// and returns the result, the file's delimiter and the fault it met.
func (pm *ProviderMaster) applySupplierFile(data []byte) (supplierfile.Result, byte, Fault) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.counts.Received++
	f := pm.takeFault()
	file, err := supplierfile.Parse(data)
	res := supplierfile.Result{Code: supplierfile.CodeAccepted}
	delim := byte('|')
	if file != nil {
		res.ControlID, delim = file.ControlID, file.Delimiter
	}
	switch {
	case f.Mode == "drop":
		pm.counts.Dropped++
		return res, delim, f
	case f.Mode == "ae" || f.Mode == "ar":
		res.Code, res.Text = supplierfile.CodeError, "simulated: supplier reference locked by another user"
		if f.Mode == "ar" {
			res.Code, res.Text = supplierfile.CodeRejected, "simulated: supplier file rejected by Epic"
		}
		if f.Text != "" {
			res.Text = f.Text
		}
		pm.counts.Rejected++
		return res, delim, f
	case err != nil:
		res.Code, res.Text = supplierfile.CodeRejected, err.Error()
		var fe *supplierfile.Error
		if errors.As(err, &fe) {
			res.Line, res.Field, res.Text = fe.Line, fe.Field, fe.Why
		}
		pm.counts.Rejected++
		return res, delim, f
	}
	if pm.seen[file.ControlID] {
		pm.counts.Duplicates++
	}
	pm.seen[file.ControlID] = true
	for _, s := range file.Suppliers {
		pm.suppliers[s.Number] = s
		pm.counts.Applied++
	}
	return res, delim, f
}
