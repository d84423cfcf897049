// Package config holds ferry's one configuration struct: defaults that run out
// of the box, filled from FERRY_* environment variables and then flags.
// It is the only place in ferry that reads the environment; it must never
// print or log secret values.
package config
