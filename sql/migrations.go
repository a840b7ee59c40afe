// Package migrations holds the numbered SQL migrations of the messenger schema, embedded
// into the binary so that `messenger migrate` needs no files beside it.
package migrations

import "embed"

// FS holds every NNN_name.sql migration, applied in file-name order.
//
//go:embed *.sql
var FS embed.FS
