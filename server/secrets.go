package server

import (
	"errors"
	"fmt"

	"github.com/configd/configd/secrets"
)

// masterKeyHint says where the master key of secrets comes from.
const masterKeyHint = "the master key comes from --master-key-file (" + EnvPrefix + "MASTER_KEY_FILE, secrets.master_key_file) or " +
	EnvPrefix + "MASTER_KEY (base64); see docs/security.md"

// checkMasterKey refuses a master key given twice.
func checkMasterKey(c *Config) error {
	if c.MasterKeyFile != "" && c.MasterKey != "" {
		return errors.New("give the master key in a file or in " + EnvPrefix + "MASTER_KEY, not both")
	}
	return nil
}

// LoadMasterKey reads the master key of secrets that c names, or returns
// nil when it names none (configd then cannot write secrets).
func (c Config) LoadMasterKey() (*secrets.MasterKey, error) {
	switch {
	case c.MasterKeyFile != "":
		return secrets.LoadMasterKeyFile(c.MasterKeyFile)
	case c.MasterKey != "":
		mk, err := secrets.ParseMasterKey([]byte(c.MasterKey))
		if err != nil {
			return nil, fmt.Errorf("environment %sMASTER_KEY: %w", EnvPrefix, err)
		}
		return mk, nil
	}
	return nil, nil
}
