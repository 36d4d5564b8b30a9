module github.com/sinewhq/sinew/test/e2e

go 1.26.0

require (
	github.com/sinewhq/sinew/pkg v0.0.0-00010101000000-000000000000
	github.com/sinewhq/sinew/proto v0.0.0-00010101000000-000000000000
)

replace (
	github.com/sinewhq/sinew/pkg => ../../pkg
	github.com/sinewhq/sinew/proto => ../../proto
)
