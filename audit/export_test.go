package audit

import (
	"io/fs"

	"github.com/configd/configd/migrations"
)

func migrationsFS() fs.FS { return migrations.FS }
