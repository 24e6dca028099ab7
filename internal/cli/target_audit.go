package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/supervisor"
)

// Limits of `redline target audit`.
const (
	auditTimeout  = 2 * time.Minute
	auditBytesMax = 16 << 20
	adminTokenEnv = "REDLINE_ADMIN_TOKEN"
)

// TargetAuditOptions are the inputs of `redline target audit`.
type TargetAuditOptions struct {
	IO      IO
	DataDir string
	URL     string
}

// NewCmdTargetAudit returns `redline target audit`.
func NewCmdTargetAudit(streams IO, runF func(context.Context, *TargetAuditOptions) error) *cobra.Command {
	opts := &TargetAuditOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "audit [--data DIR | --url URL]",
		Short: "Run the ledger audit of the built-in target",
		Long: `Audit every unit replica of the built-in target, print the audit as JSON, and exit 3 when
any invariant is false. With --data, a running target's admin API is asked (its address and
token come from DIR/topology.json and DIR/admin.token); when none runs, the databases in DIR
are audited directly. With --url (the admin API's base URL), the token comes from
$` + adminTokenEnv + `.`,
		Example: `  redline target audit --data /tmp/paycell
  REDLINE_ADMIN_TOKEN=$(cat /tmp/paycell/admin.token) redline target audit --url http://127.0.0.1:8081`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.DataDir != "" && opts.URL != "" {
				return fmt.Errorf("%w: --data and --url exclude each other", ErrInvalid)
			}
			if opts.URL != "" {
				if err := checkAdminURL(opts.URL); err != nil {
					return fmt.Errorf("%w: --url: %w", ErrInvalid, err)
				}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return targetAuditRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataDir, "data", "", "the target's data directory (default "+defaultTargetData+")")
	f.StringVar(&opts.URL, "url", "", "the admin API's base URL, e.g. http://127.0.0.1:8081")
	return cmd
}

// checkAdminURL accepts an http or https base URL with a host and a valid port, and nothing
// after the path: the admin API is reached at URL + "/admin/audit".
func checkAdminURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want an http:// or https:// URL", raw)
	case u.Hostname() == "":
		return fmt.Errorf("%q has no host", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%q: want a base URL, without user, query or fragment", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %s is not 1-65535", raw, p)
		}
	}
	return nil
}

func targetAuditRun(ctx context.Context, opts *TargetAuditOptions) error {
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	rep, err := opts.audit(ctx)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(opts.IO.Out); err != nil {
		return err
	}
	if rep.Failed() {
		var names []string
		for _, c := range rep.Checks {
			if c.Verdict == ledger.False {
				names = append(names, c.Name)
			}
		}
		return fmt.Errorf("%w: audit: false: %s", ErrFailed, strings.Join(names, ", "))
	}
	return nil
}

// audit asks the running target's admin API; with --data and no target running, it audits the
// databases in the data dir directly.
func (o *TargetAuditOptions) audit(ctx context.Context) (audit.Report, error) {
	if o.URL != "" {
		token := os.Getenv(adminTokenEnv)
		if token == "" {
			return audit.Report{}, fmt.Errorf("%w: --url needs the admin token in $%s", ErrInvalid, adminTokenEnv)
		}
		return adminAudit(ctx, strings.TrimSuffix(o.URL, "/"), token)
	}
	dir := o.DataDir
	if dir == "" {
		dir = defaultTargetData
	}
	if t, err := supervisor.ReadTopology(dir); err == nil {
		token, err := supervisor.ReadToken(dir)
		if err != nil {
			return audit.Report{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		rep, err := adminAudit(ctx, "http://"+t.Admin, token)
		if !errors.Is(err, errAdminDown) {
			return rep, err
		}
	}
	rep, err := audit.Offline(ctx, dir)
	if errors.Is(err, audit.ErrNoReplicas) {
		return rep, fmt.Errorf("%w: no target in %s: %w", ErrInvalid, dir, err)
	}
	if err != nil {
		return rep, fmt.Errorf("audit %s: %w", dir, err)
	}
	return rep, nil
}

// errAdminDown says no admin API answered: the target is not running.
var errAdminDown = errors.New("admin API not answering")

// adminAudit runs GET /admin/audit on the admin API at base.
func adminAudit(ctx context.Context, base, token string) (audit.Report, error) {
	var rep audit.Report
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/admin/audit", nil)
	if err != nil {
		return rep, fmt.Errorf("%w: audit URL: %w", ErrInvalid, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rep, fmt.Errorf("audit target: %w: %w", errAdminDown, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, auditBytesMax))
	if err != nil {
		return rep, fmt.Errorf("audit target: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return rep, fmt.Errorf("audit target: status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return rep, fmt.Errorf("audit target: decode: %w", err)
	}
	return rep, nil
}
