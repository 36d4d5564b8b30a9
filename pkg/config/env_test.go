package config

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func mapLookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestLoadEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    func(*testConfig)
		wantErr string
	}{
		{
			name: "nothing set keeps defaults",
			env:  map[string]string{"OTHER_PORT": "1"},
			want: func(*testConfig) {},
		},
		{
			name: "every kind",
			env: map[string]string{
				"SINEW_INGEST_LOG_LEVEL":    "warn",
				"SINEW_INGEST_NAME":         " spaced ",
				"SINEW_INGEST_PORT":         "-1",
				"SINEW_INGEST_WORKERS":      "255",
				"SINEW_INGEST_RATIO":        "1e-3",
				"SINEW_INGEST_DEBUG":        "true",
				"SINEW_INGEST_MAXBYTES":     "0x100",
				"SINEW_INGEST_NATS_URL":     "nats://n:4222",
				"SINEW_INGEST_NATS_TIMEOUT": "1h2m",
				"SINEW_INGEST_NATS_SERVERS": " a , b,,c ",
			},
			want: func(c *testConfig) {
				c.LogLevel = "warn"
				c.Name = " spaced "
				c.Port = -1
				c.Workers = 255
				c.Ratio = 0.001
				c.Debug = true
				c.MaxBytes = 256
				c.NATS = testNATS{URL: "nats://n:4222", Timeout: time.Hour + 2*time.Minute, Servers: []string{"a", "b", "c"}}
			},
		},
		{
			name: "empty list clears the default",
			env:  map[string]string{"SINEW_INGEST_NATS_SERVERS": ""},
			want: func(c *testConfig) { c.NATS.Servers = []string{} },
		},
		{
			name: "empty string is a value",
			env:  map[string]string{"SINEW_INGEST_NAME": ""},
			want: func(c *testConfig) { c.Name = "" },
		},
		{
			name: "pointer to struct allocated when set",
			env:  map[string]string{"SINEW_INGEST_TLS_VERIFY": "1"},
			want: func(c *testConfig) { c.TLS = &testTLS{Verify: true} },
		},
		{
			name: "skipped fields",
			env:  map[string]string{"SINEW_INGEST_SECRET": "x", "SINEW_INGEST_INTERNAL": "x", "SINEW_INGEST_TESTCOMMON_LOG_LEVEL": "x"},
			want: func(*testConfig) {},
		},
		{
			name:    "bad duration",
			env:     map[string]string{"SINEW_INGEST_NATS_TIMEOUT": "abc"},
			wantErr: `config: SINEW_INGEST_NATS_TIMEOUT: invalid duration "abc"`,
		},
		{
			name:    "bad bool",
			env:     map[string]string{"SINEW_INGEST_DEBUG": "yes"},
			wantErr: `config: SINEW_INGEST_DEBUG: invalid bool "yes"`,
		},
		{
			name:    "bad int",
			env:     map[string]string{"SINEW_INGEST_PORT": "80a"},
			wantErr: `config: SINEW_INGEST_PORT: invalid integer "80a"`,
		},
		{
			name:    "uint out of range",
			env:     map[string]string{"SINEW_INGEST_WORKERS": "256"},
			wantErr: `config: SINEW_INGEST_WORKERS: "256" out of range for uint8`,
		},
		{
			name:    "negative uint",
			env:     map[string]string{"SINEW_INGEST_WORKERS": "-1"},
			wantErr: `config: SINEW_INGEST_WORKERS: invalid unsigned integer "-1"`,
		},
		{
			name:    "bad float",
			env:     map[string]string{"SINEW_INGEST_RATIO": "half"},
			wantErr: `config: SINEW_INGEST_RATIO: invalid number "half"`,
		},
		{
			name:    "error inside an unset pointer",
			env:     map[string]string{"SINEW_INGEST_TLS_VERIFY": "maybe"},
			wantErr: `config: SINEW_INGEST_TLS_VERIFY: invalid bool "maybe"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := defaults()
			if checkErr(t, LoadEnv("SINEW_INGEST", &got, mapLookup(tt.env)), tt.wantErr) {
				return
			}
			want := defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

type exoticConfig struct {
	Addr     netip.AddrPort    `yaml:"addr"`
	Limit    *int              `yaml:"limit"`
	Interval *time.Duration    `yaml:"interval"`
	Tags     map[string]string `yaml:"tags"`
	Ports    []int             `yaml:"ports"`
	Nested   *struct {
		Deeper *testTLS `yaml:"deeper"`
	} `yaml:"nested"`
	Renamed  string `yaml:"max-items"`
	Untagged string
	Exported testCommon        `yaml:",inline"`
	Extra    map[string]string `yaml:",inline"`
}

func TestLoadEnvExotic(t *testing.T) {
	t.Parallel()
	ten := 10
	minute := time.Minute
	tests := []struct {
		name    string
		env     map[string]string
		want    exoticConfig
		wantErr string
	}{
		{
			name: "nothing set allocates nothing",
			env:  map[string]string{},
			want: exoticConfig{},
		},
		{
			name: "text unmarshaler, pointers to scalars, deep pointers, renamed keys, inline",
			env: map[string]string{
				"APP_ADDR":                    "127.0.0.1:4222",
				"APP_LIMIT":                   "10",
				"APP_INTERVAL":                "1m",
				"APP_NESTED_DEEPER_CERT_FILE": "c.pem",
				"APP_MAX_ITEMS":               "debug",
				"APP_LOG_LEVEL":               "warn",
				"APP_UNTAGGED":                "u",
			},
			want: exoticConfig{
				Addr:     netip.MustParseAddrPort("127.0.0.1:4222"),
				Limit:    &ten,
				Interval: &minute,
				Nested: &struct {
					Deeper *testTLS `yaml:"deeper"`
				}{Deeper: &testTLS{CertFile: "c.pem"}},
				Renamed:  "debug",
				Untagged: "u",
				Exported: testCommon{LogLevel: "warn"},
			},
		},
		{
			name: "inline map has no variable",
			env:  map[string]string{"APP": "x", "APP_EXTRA": "x"},
			want: exoticConfig{},
		},
		{
			name:    "text unmarshaler error",
			env:     map[string]string{"APP_ADDR": "nowhere"},
			wantErr: `config: APP_ADDR: invalid value "nowhere"`,
		},
		{
			name:    "map is unsupported",
			env:     map[string]string{"APP_TAGS": "a=b"},
			wantErr: "config: APP_TAGS: unsupported type map[string]string",
		},
		{
			name:    "int slice is unsupported",
			env:     map[string]string{"APP_PORTS": "1,2"},
			wantErr: "config: APP_PORTS: unsupported type []int",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got exoticConfig
			if checkErr(t, LoadEnv("app", &got, mapLookup(tt.env)), tt.wantErr) {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestLoadEnvEmptyPrefix(t *testing.T) {
	t.Parallel()
	got := defaults()
	lookup := func(string) (string, bool) { return "1", true }
	if err := LoadEnv("", &got, lookup); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, defaults()) {
		t.Errorf("empty prefix read the environment: %+v", got)
	}
}
