package server

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// DefaultConfigFile is read by Load when no file is named and it exists.
const DefaultConfigFile = "/etc/cairn/cairn.toml"

// clientEnv are variables of the client commands, not settings of a
// member; Load lets them be.
var clientEnv = map[string]bool{
	"CAIRN_ENDPOINTS": true, "CAIRN_CERT": true, "CAIRN_KEY": true, "CAIRN_CACERT": true, "CAIRN_DATA_DIR": true,
}

// AddFlags defines the flags of the named keys on fs, or of every key when
// none is named, with their defaults and help.
func AddFlags(fs *pflag.FlagSet, keys ...string) {
	def := Default()
	for _, s := range settings {
		if len(keys) > 0 && !contains(keys, s.key) {
			continue
		}
		usage := s.usage + " (env " + EnvName(s.key) + ")"
		switch p := s.field(&def).(type) {
		case *string:
			fs.String(s.flag, *p, usage)
		case *[]string:
			fs.StringSlice(s.flag, *p, usage)
		case *int:
			fs.Int(s.flag, *p, usage)
		case *int64:
			fs.Int64(s.flag, *p, usage)
		case *uint64:
			fs.Uint64(s.flag, *p, usage)
		case *time.Duration:
			fs.Duration(s.flag, *p, usage)
		case *bool:
			fs.Bool(s.flag, *p, usage)
		default:
			panic(fmt.Sprintf("server: setting %s has a field of type %T", s.key, p))
		}
	}
}

// Sources says where each key's value came from: "flag --name",
// "env CAIRN_NAME", "file /etc/cairn/cairn.toml" or "default".
type Sources map[string]string

// Load resolves every setting with viper: a flag of fs that was set, then
// CAIRN_<KEY> of environ (os.Environ() in cairn), then the TOML file, then
// the default; then it derives and checks them as New does. fs may lack
// flags (a command with a few of them) or be nil. file may be empty: then
// DefaultConfigFile is read when it exists. Unknown keys in the file and
// unknown CAIRN_* variables (the client commands' excepted) are errors.
func Load(fs *pflag.FlagSet, file string, environ []string) (Config, Sources, error) {
	v := viper.New()
	def := Default()
	for _, s := range settings {
		v.SetDefault(s.key, reflect.ValueOf(s.field(&def)).Elem().Interface())
		if fs != nil {
			if f := fs.Lookup(s.flag); f != nil {
				if err := v.BindPFlag(s.key, f); err != nil {
					return Config{}, nil, err
				}
			}
		}
	}
	env, err := envSettings(environ)
	if err != nil {
		return Config{}, nil, err
	}

	if file == "" {
		if _, err := os.Stat(DefaultConfigFile); err == nil {
			file = DefaultConfigFile
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("toml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, nil, fmt.Errorf("read config file %s: %w", file, err)
		}
		// Defaults and flags name known keys only: anything else is the file's.
		for _, k := range v.AllKeys() {
			if _, ok := lookup(k); !ok {
				return Config{}, nil, fmt.Errorf("config file %s: unknown key %q; config.example.toml lists every key", file, k)
			}
		}
	}
	// The environment, a layer above the file: viper's own env layer
	// (AutomaticEnv) reads the process environment only, but commands take
	// theirs as a parameter, so that tests are hermetic (CI's test knobs,
	// such as CAIRN_REQUIRE_EXTERNAL, are no settings).
	if err := v.MergeConfigMap(env); err != nil {
		return Config{}, nil, err
	}

	var c Config
	var errs []error
	src := make(Sources, len(settings))
	for _, s := range settings {
		if err := v.UnmarshalKey(s.key, s.field(&c), viper.DecodeHook(decodeHook)); err != nil {
			var de *mapstructure.DecodeError
			if errors.As(err, &de) {
				err = de.Unwrap()
			}
			errs = append(errs, fmt.Errorf("%s: %w", s.key, err))
		}
		// viper does not say which layer a value came from; this is its
		// precedence, asked layer by layer.
		switch f := flagOf(fs, s.flag); {
		case f != nil && f.Changed:
			src[s.key] = "flag --" + s.flag
		case hasPath(env, s.key):
			src[s.key] = "env " + EnvName(s.key)
		case file != "" && v.InConfig(s.key):
			src[s.key] = "file " + file
		default:
			src[s.key] = "default"
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, src, err
	}
	return c, src, c.complete()
}

func flagOf(fs *pflag.FlagSet, name string) *pflag.Flag {
	if fs == nil {
		return nil
	}
	return fs.Lookup(name)
}

// envSettings are the settings of environ's CAIRN_<KEY> variables, as a
// nested map of keys (peer.addr is env["peer"]["addr"]). An empty
// variable is set (CAIRN_DNS_ADDR= turns DNS off). A CAIRN_* variable that
// is neither a setting nor a client command's is an error: a misspelt one
// would otherwise be ignored.
func envSettings(environ []string) (map[string]any, error) {
	known := map[string]string{}
	for _, s := range settings {
		known[EnvName(s.key)] = s.key
	}
	env := map[string]any{}
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "CAIRN_") || clientEnv[name] && known[name] == "" {
			continue
		}
		key, ok := known[name]
		if !ok {
			names := make([]string, 0, len(known))
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("unknown environment variable %s; known: %s", name, strings.Join(names, ", "))
		}
		m := env
		path := strings.Split(key, ".")
		for _, p := range path[:len(path)-1] {
			sub, _ := m[p].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[path[len(path)-1]] = val
	}
	return env, nil
}

// hasPath reports whether the nested map m holds the dotted key.
func hasPath(m map[string]any, key string) bool {
	path := strings.Split(key, ".")
	for _, p := range path[:len(path)-1] {
		if m, _ = m[p].(map[string]any); m == nil {
			return false
		}
	}
	_, ok := m[path[len(path)-1]]
	return ok
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	listType     = reflect.TypeFor[[]string]()
)

// decodeHook converts what viper holds for a key (a string from a flag or
// the environment, a TOML value from the file, a default) to the field's
// type, with errors that say what is expected. Lists are split at commas
// and white space, and an empty list is nil, so that a configuration
// printed by config show loads back equal.
func decodeHook(_, to reflect.Type, data any) (any, error) {
	switch to {
	case durationType:
		switch x := data.(type) {
		case time.Duration:
			return x, nil
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return nil, fmt.Errorf("%q is not a duration (e.g. 100ms, 1s)", x)
			}
			return d, nil
		}
		return nil, fmt.Errorf("%v is not a duration: write it as a string, e.g. \"100ms\" or \"1s\"", data)
	case listType:
		var out []string
		switch x := data.(type) {
		case string:
			out = splitList(x)
		case []string:
			for _, e := range x {
				out = append(out, splitList(e)...)
			}
		case []any:
			for _, e := range x {
				out = append(out, splitList(fmt.Sprint(e))...)
			}
		default:
			return nil, fmt.Errorf("%v is not a list", data)
		}
		if len(out) == 0 {
			return []string(nil), nil
		}
		return out, nil
	}
	switch to.Kind() {
	case reflect.Bool:
		switch x := data.(type) {
		case bool:
			return x, nil
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				return nil, fmt.Errorf("%q is not true or false", x)
			}
			return b, nil
		}
		return nil, fmt.Errorf("%v is not true or false", data)
	case reflect.Int, reflect.Int64, reflect.Uint64:
		s := strings.TrimSpace(fmt.Sprint(data))
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return nil, fmt.Errorf("%q is not a non-negative integer", s)
		}
		return reflect.ValueOf(n).Convert(to).Interface(), nil
	case reflect.String:
		switch data.(type) {
		case string:
		default:
			return nil, fmt.Errorf("%v is not a string", data)
		}
	}
	return data, nil
}

func contains(xs []string, x string) bool {
	for _, e := range xs {
		if e == x {
			return true
		}
	}
	return false
}
