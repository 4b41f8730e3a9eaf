// Package script compiles and runs TypeScript hooks: esbuild strips the
// types and bundles the module, and each run happens in goja inside a
// worker process of its own (see Engine), so a hook that loops, allocates
// without bound or hangs is stopped without touching the server. The
// package decides nothing about when a hook runs; hooks/ does.
package script

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// MaxSource is the largest module accepted: 100 KiB, as in the reference
// product.
const MaxSource = 100 << 10

// typesURL matches the reference product's type module at any v1 version.
// Importing it is type-only: it maps to the definitions shipped here.
var typesURL = regexp.MustCompile(`^https://deno\.land/x/authgear_deno_hook@v1\.\d+\.\d+/mod\.ts$`)

//go:embed types/mod.ts
var typesModule string

// TypesModule is the shipped type definitions (for the docs and the portal).
func TypesModule() string { return typesModule }

// Compiled is a hook ready to run: the JavaScript esbuild made from the
// TypeScript, and a key that names it in the workers' program caches.
type Compiled struct {
	JS  string
	Key string
}

// CompileError is a compile failure with where it is: Line is 1-based,
// Column 1-based in characters (0 when the error has no place).
type CompileError struct {
	Line, Column int
	Message      string
	LineText     string
}

func (e *CompileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
	}
	return e.Message
}

// globalName is where the bundle leaves the module's exports.
const globalName = "__latchkey_hook"

// Compile turns a hook's TypeScript into JavaScript goja runs. It needs no
// network: the only import allowed is the reference product's type module,
// mapped to shipped definitions; any other import is a compile error. The
// module must have a default export that is a function; that is checked when
// it first runs (Engine.Check does it at save).
func Compile(source string) (*Compiled, error) {
	if len(source) > MaxSource {
		return nil, &CompileError{Message: fmt.Sprintf("The code is %d KiB; a hook can be at most %d KiB.", (len(source)+1023)/1024, MaxSource>>10)}
	}
	if strings.TrimSpace(source) == "" {
		return nil, &CompileError{Message: "Enter the hook's code."}
	}
	res := api.Build(api.BuildOptions{
		Stdin:      &api.StdinOptions{Contents: source, Sourcefile: "hook.ts", Loader: api.LoaderTS},
		Bundle:     true,
		Write:      false,
		Format:     api.FormatIIFE,
		GlobalName: globalName,
		Platform:   api.PlatformNeutral,
		// goja runs ES2017 (async functions included); esbuild lowers the rest.
		Target:   api.ES2017,
		LogLevel: api.LogLevelSilent,
		Charset:  api.CharsetUTF8,
		Plugins:  []api.Plugin{importPlugin},
	})
	if len(res.Errors) > 0 {
		return nil, compileError(res.Errors[0])
	}
	if len(res.OutputFiles) != 1 {
		return nil, &CompileError{Message: "The code compiled to nothing."}
	}
	return FromJS(string(res.OutputFiles[0].Contents)), nil
}

// FromJS wraps JavaScript that Compile made earlier (and the caller kept).
func FromJS(js string) *Compiled {
	sum := sha256.Sum256([]byte(js))
	return &Compiled{JS: js, Key: hex.EncodeToString(sum[:16])}
}

func compileError(m api.Message) *CompileError {
	e := &CompileError{Message: m.Text}
	if l := m.Location; l != nil && (l.File == "hook.ts" || l.File == "<stdin>") {
		e.Line = l.Line
		col := l.Column
		if col > len(l.LineText) {
			col = len(l.LineText)
		}
		e.Column = len([]rune(l.LineText[:col])) + 1
		e.LineText = l.LineText
	}
	return e
}

const typesNamespace = "latchkey-types"

// importPlugin resolves the type module's URL to the shipped file and
// refuses every other import: a hook has no file system and fetches
// nothing at compile time.
var importPlugin = api.Plugin{
	Name: "latchkey-imports",
	Setup: func(b api.PluginBuild) {
		b.OnResolve(api.OnResolveOptions{Filter: `.*`}, func(args api.OnResolveArgs) (api.OnResolveResult, error) {
			if typesURL.MatchString(args.Path) {
				return api.OnResolveResult{Path: "authgear_deno_hook/mod.ts", Namespace: typesNamespace}, nil
			}
			if args.Kind == api.ResolveEntryPoint {
				return api.OnResolveResult{}, nil
			}
			return api.OnResolveResult{}, fmt.Errorf("cannot import %q: a hook can import only https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts (its types); use fetch for everything else", args.Path)
		})
		b.OnLoad(api.OnLoadOptions{Filter: `.*`, Namespace: typesNamespace}, func(api.OnLoadArgs) (api.OnLoadResult, error) {
			return api.OnLoadResult{Contents: &typesModule, Loader: api.LoaderTS}, nil
		})
	},
}

//go:embed example.ts
var example string

// Example is the reference guide's user.created hook, as printed: the
// starting code of a new TypeScript hook.
func Example() string { return example }
