package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type testTLS struct {
	CertFile string `yaml:"cert_file"`
	Verify   bool   `yaml:"verify"`
}

type testNATS struct {
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
	Servers []string      `yaml:"servers"`
}

type testCommon struct {
	LogLevel string `yaml:"log_level"`
}

type testConfig struct {
	testCommon `yaml:",inline"`

	Name     string   `yaml:"name"`
	Port     int      `yaml:"port"`
	Workers  uint8    `yaml:"workers"`
	Ratio    float64  `yaml:"ratio"`
	Debug    bool     `yaml:"debug"`
	NATS     testNATS `yaml:"nats"`
	TLS      *testTLS `yaml:"tls"`
	MaxBytes int64    // no tag: yaml.v3 uses "maxbytes"
	Secret   string   `yaml:"-"`
	internal string
}

func defaults() testConfig {
	return testConfig{
		testCommon: testCommon{LogLevel: "info"},
		Name:       "ingest",
		Port:       8080,
		Workers:    4,
		Ratio:      0.5,
		NATS: testNATS{
			URL:     "nats://127.0.0.1:4222",
			Timeout: 5 * time.Second,
			Servers: []string{"a"},
		},
		MaxBytes: 1 << 20,
		Secret:   "keep",
		internal: "keep",
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sinew.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func checkErr(t *testing.T, err error, want string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
	return want != ""
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		want    func(*testConfig)
		wantErr string
	}{
		{
			name: "empty file keeps defaults",
			yaml: "",
			want: func(*testConfig) {},
		},
		{
			name: "comment-only file keeps defaults",
			yaml: "# nothing here\n",
			want: func(*testConfig) {},
		},
		{
			name: "every kind",
			yaml: `
log_level: debug
name: transform
port: 9090
workers: 8
ratio: 0.25
debug: true
maxbytes: 2048
nats:
  url: nats://nats:4222
  timeout: 1m30s
  servers: [x, y]
tls:
  cert_file: /etc/sinew/cert.pem
`,
			want: func(c *testConfig) {
				c.LogLevel = "debug"
				c.Name = "transform"
				c.Port = 9090
				c.Workers = 8
				c.Ratio = 0.25
				c.Debug = true
				c.MaxBytes = 2048
				c.NATS = testNATS{URL: "nats://nats:4222", Timeout: 90 * time.Second, Servers: []string{"x", "y"}}
				c.TLS = &testTLS{CertFile: "/etc/sinew/cert.pem"}
			},
		},
		{
			name: "partial nested struct keeps sibling defaults",
			yaml: "nats:\n  timeout: 250ms\n",
			want: func(c *testConfig) { c.NATS.Timeout = 250 * time.Millisecond },
		},
		{
			name:    "unknown top-level key",
			yaml:    "name: x\nnmae: y\n",
			wantErr: "line 2: field nmae not found",
		},
		{
			name:    "unknown nested key",
			yaml:    "nats:\n  url: x\n  tiemout: 1s\n",
			wantErr: "line 3: field tiemout not found",
		},
		{
			name:    "skipped field is unknown to YAML",
			yaml:    "secret: x\n",
			wantErr: "field secret not found",
		},
		{
			name:    "bad duration",
			yaml:    "nats:\n  timeout: soon\n",
			wantErr: "cannot unmarshal !!str `soon` into time.Duration",
		},
		{
			// A bare number would silently mean nanoseconds.
			name:    "duration without unit",
			yaml:    "nats:\n  timeout: 30\n",
			wantErr: "into time.Duration",
		},
		{
			name:    "overflow",
			yaml:    "workers: 300\n",
			wantErr: "into uint8",
		},
		{
			name:    "two documents",
			yaml:    "name: a\n---\nname: b\n",
			wantErr: "more than one YAML document",
		},
		{
			name:    "not a mapping",
			yaml:    "- a\n- b\n",
			wantErr: "cannot unmarshal !!seq",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tt.yaml)
			got := defaults()
			err := Load(path, "", &got)
			if checkErr(t, err, tt.wantErr) {
				if !strings.HasPrefix(err.Error(), "config: "+path+": ") {
					t.Errorf("error %q does not name the file", err)
				}
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

func TestLoadSection(t *testing.T) {
	t.Parallel()
	const shared = `
ingest:
  name: ingest-1
  nats:
    url: nats://a:4222
transform:
  name: transform-1
  whatever: ignored because it is not our section
console: {listen: ":8080"}
`
	tests := []struct {
		name    string
		yaml    string
		section string
		want    func(*testConfig)
		wantErr string
	}{
		{
			name:    "our section",
			yaml:    shared,
			section: "ingest",
			want: func(c *testConfig) {
				c.Name = "ingest-1"
				c.NATS.URL = "nats://a:4222"
			},
		},
		{
			name:    "missing section keeps defaults",
			yaml:    shared,
			section: "loader",
			want:    func(*testConfig) {},
		},
		{
			name:    "null section keeps defaults",
			yaml:    "ingest:\ntransform:\n  name: t\n",
			section: "ingest",
			want:    func(*testConfig) {},
		},
		{
			name:    "empty file",
			yaml:    "",
			section: "ingest",
			want:    func(*testConfig) {},
		},
		{
			name:    "unknown key inside the section",
			yaml:    shared,
			section: "transform",
			wantErr: "line 8: field whatever not found",
		},
		{
			name:    "section of the wrong shape",
			yaml:    "ingest: [1, 2]\n",
			section: "ingest",
			wantErr: "cannot unmarshal !!seq",
		},
		{
			name:    "invalid section name",
			yaml:    shared,
			section: "a,inline",
			wantErr: `config: invalid section name "a,inline"`,
		},
		{
			name:    "section name with a backslash",
			yaml:    shared,
			section: `a\b`,
			wantErr: "invalid section name",
		},
		{
			name:    "empty section name",
			yaml:    shared,
			section: "",
			wantErr: "invalid section name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tt.yaml)
			got := defaults()
			if checkErr(t, LoadSection(path, tt.section, "", &got), tt.wantErr) {
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

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	var cfg testConfig
	var notStruct int
	var nilPtr *testConfig
	tests := []struct {
		name    string
		load    func() error
		wantErr string
	}{
		{"missing file", func() error { return Load(missing, "", &cfg) }, "config: open " + missing},
		{"missing file in section", func() error { return LoadSection(missing, "x", "", &cfg) }, "config: open " + missing},
		{"not a pointer", func() error { return Load("", "", cfg) }, "non-nil pointer to a struct, got config.testConfig"},
		{"pointer to int", func() error { return Load("", "", &notStruct) }, "got *int"},
		{"nil pointer", func() error { return LoadEnv("X", nilPtr, nil) }, "got *config.testConfig"},
		{"nil", func() error { return LoadSection("", "x", "", nil) }, "got <nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, tt.load(), tt.wantErr)
		})
	}
}

// TestLoadOrder checks the layering defaults < file < environment through
// the real process environment, so it cannot run in parallel.
func TestLoadOrder(t *testing.T) {
	path := writeFile(t, "ingest:\n  name: from-file\n  port: 1\n")
	t.Setenv("SINEWTEST_INGEST_PORT", "2")

	got := defaults()
	if err := LoadSection(path, "ingest", "SINEWTEST_INGEST", &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "from-file" || got.Port != 2 || got.Workers != 4 {
		t.Errorf("got name=%q port=%d workers=%d, want from-file 2 4", got.Name, got.Port, got.Workers)
	}

	got = defaults()
	if err := Load("", "SINEWTEST_INGEST", &got); err != nil {
		t.Fatal(err)
	}
	if got.Port != 2 {
		t.Errorf("Load without a file: port = %d, want 2", got.Port)
	}
}
