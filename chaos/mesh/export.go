package mesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/redline-dev/redline/chaos"
)

// Errors of export.
var (
	// ErrExport is wrapped by every export failure: a fault Chaos Mesh would refuse, options
	// Kubernetes would refuse.
	ErrExport = errors.New("export chaos mesh resources")
	// ErrKubeconfig is wrapped when a kubeconfig file cannot be read or used.
	ErrKubeconfig = errors.New("bad kubeconfig")
)

// ExportOptions shape the exported resources.
type ExportOptions struct {
	Plan      string // the plan's name: the Workflow's name
	Namespace string // where the resources go, and what their selectors select in
	// LabelMap renames selector keys: Redline's "unit" may be "app.kubernetes.io/instance" in
	// the cluster.
	LabelMap map[string]string
	// Flat exports one object per fault instead of one Workflow; timing is then the caller's.
	Flat bool
	// PhaseStart is each phase's offset from the run's start, for the Workflow's waits.
	PhaseStart map[string]time.Duration
}

// Export is the plan's faults as Chaos Mesh objects, each defaulted and validated by Chaos
// Mesh's own webhooks. Skipped names the faults that have no Chaos Mesh kind (ConsumerChaos).
type Export struct {
	Objects []client.Object
	Skipped []string
}

// DNS-1123 subdomain names, which Chaos Mesh requires of templates.
var nameBad = regexp.MustCompile(`[^a-z0-9.-]+`)

// k8sName turns a plan name into a resource name.
func k8sName(s string) string {
	s = strings.Trim(nameBad.ReplaceAllString(strings.ToLower(s), "-"), "-.")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-.")
	}
	if s == "" {
		s = "fault"
	}
	return s
}

// CheckNamespace checks a namespace as Kubernetes does: a DNS-1123 label.
func CheckNamespace(ns string) error {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Errorf("%w: namespace %q: %s", ErrExport, ns, strings.Join(errs, "; "))
	}
	return nil
}

// CheckLabelMap checks a label map as Kubernetes reads its keys: both sides of every entry a
// label key (a qualified name, like app.kubernetes.io/instance), and no two keys mapped onto
// one, which would make a selector keep either value at random.
func CheckLabelMap(m map[string]string) error {
	from := map[string]string{} // target key → its source
	for _, k := range slices.Sorted(maps.Keys(m)) {
		to := m[k]
		for _, key := range []string{k, to} {
			if errs := validation.IsQualifiedName(key); len(errs) > 0 {
				return fmt.Errorf("%w: label map %s=%s: %q is not a Kubernetes label key: %s", ErrExport, k, to, key, strings.Join(errs, "; "))
			}
		}
		if prev, dup := from[to]; dup {
			return fmt.Errorf("%w: label map: %s and %s both map to %s; a selector on both would keep one of them at random", ErrExport, prev, k, to)
		}
		from[to] = k
	}
	return nil
}

// Build returns the export of faults.
func Build(faults []chaos.Fault, opts ExportOptions) (Export, error) {
	quiet()
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if err := CheckNamespace(opts.Namespace); err != nil {
		return Export{}, err
	}
	if err := CheckLabelMap(opts.LabelMap); err != nil {
		return Export{}, err
	}
	var ex Export
	var wf []v1alpha1.Template
	var branches []string
	used := map[string]bool{}
	for _, f := range faults {
		if f.Kind == chaos.KindConsumer || len(f.Spec) == 0 {
			ex.Skipped = append(ex.Skipped, fmt.Sprintf("%s: %s has no Chaos Mesh kind", f.Name, f.Kind))
			continue
		}
		name := unique(k8sName(f.Name), used)
		obj, err := object(f, name, opts)
		if err != nil {
			return ex, err
		}
		if opts.Flat {
			ex.Objects = append(ex.Objects, obj)
			continue
		}
		ts := templates(f, name, obj, opts.PhaseStart[f.Phase], used)
		wf = append(wf, ts...)
		branches = append(branches, ts[0].Name)
	}
	if opts.Flat || len(branches) == 0 {
		return ex, nil
	}
	w, err := workflow(k8sName(opts.Plan), opts.Namespace, wf, branches, used)
	if err != nil {
		return ex, err
	}
	ex.Objects = append(ex.Objects, w)
	return ex, nil
}

func unique(name string, used map[string]bool) string {
	n := name
	for i := 2; used[n]; i++ {
		n = fmt.Sprintf("%s-%d", strings.TrimRight(name[:min(len(name), 58)], "-."), i)
	}
	used[n] = true
	return n
}

// object builds, defaults and validates the Chaos Mesh object of one fault.
func object(f chaos.Fault, name string, opts ExportOptions) (chaosObject, error) {
	obj, ps := newObject(f.Kind)
	if obj == nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrExport, f.Name, ps[0].Message)
	}
	spec := reflect.ValueOf(obj).Elem().FieldByName("Spec").Addr().Interface()
	if err := json.Unmarshal(f.Spec, spec); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrExport, f.Name, err)
	}
	sel, _ := selectorOf(spec)
	if err := mapLabels(sel, opts.LabelMap); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrExport, f.Name, err)
	}
	sel.Selector.Namespaces = []string{opts.Namespace}
	if !f.OneShot() && f.Duration > 0 {
		d := f.Duration.String()
		setDuration(spec, &d)
	}
	obj.SetName(name)
	obj.SetNamespace(opts.Namespace)
	obj.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "redline", "redline.dev/phase": k8sName(f.Phase)})
	obj.GetObjectKind().SetGroupVersionKind(v1alpha1.SchemeGroupVersion.WithKind(string(f.Kind)))
	if ps := validate(obj, opts.Namespace); len(ps) > 0 {
		return nil, fmt.Errorf("%w: %s: %s: %s", ErrExport, f.Name, ps[0].Path, ps[0].Message)
	}
	if err := obj.Default(context.Background(), obj); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrExport, f.Name, err)
	}
	return obj, nil
}

// mapLabels renames the selector's keys by m. It refuses a selector whose keys would collide
// once renamed ({app: x, unit: b} with unit=app: app=x or app=b, at random, widening the
// fault), and keys that are not Kubernetes label keys, which the cluster could not select by.
func mapLabels(sel *v1alpha1.PodSelector, m map[string]string) error {
	rename := func(k string) string {
		if to, ok := m[k]; ok {
			return to
		}
		return k
	}
	labels := map[string]string{}
	from := map[string]string{} // new key → its key in the plan
	for _, k := range slices.Sorted(maps.Keys(sel.Selector.LabelSelectors)) {
		to := rename(k)
		if prev, dup := from[to]; dup {
			return fmt.Errorf("selector keys %s and %s would both be %s in the cluster", prev, k, to)
		}
		if errs := validation.IsQualifiedName(to); len(errs) > 0 {
			return fmt.Errorf("selector key %q is not a Kubernetes label key: %s", to, strings.Join(errs, "; "))
		}
		from[to] = k
		labels[to] = sel.Selector.LabelSelectors[k]
	}
	if len(labels) > 0 {
		sel.Selector.LabelSelectors = labels
	}
	for i, r := range sel.Selector.ExpressionSelectors {
		to := rename(r.Key)
		if errs := validation.IsQualifiedName(to); len(errs) > 0 {
			return fmt.Errorf("selector key %q is not a Kubernetes label key: %s", to, strings.Join(errs, "; "))
		}
		sel.Selector.ExpressionSelectors[i].Key = to
	}
	return nil
}

func setDuration(spec any, d *string) {
	switch s := spec.(type) {
	case *v1alpha1.PodChaosSpec:
		s.Duration = d
	case *v1alpha1.NetworkChaosSpec:
		s.Duration = d
	case *v1alpha1.StressChaosSpec:
		s.Duration = d
	case *v1alpha1.HTTPChaosSpec:
		s.Duration = d
	}
}

// templates is one fault's branch of the Workflow: a Serial of a Suspend until its time (when
// it is not at the start) and the chaos itself, whose length is the template's deadline.
func templates(f chaos.Fault, name string, obj chaosObject, phaseStart time.Duration, used map[string]bool) []v1alpha1.Template {
	spec := reflect.ValueOf(obj).Elem().FieldByName("Spec").Addr().Interface()
	setDuration(spec, nil) // a Workflow's chaos lasts its template's deadline
	embed := &v1alpha1.EmbedChaos{}
	reflect.ValueOf(embed).Elem().FieldByName(string(f.Kind)).Set(reflect.ValueOf(spec))
	deadline := f.Duration
	if f.OneShot() || deadline <= 0 {
		deadline = chaos.OneShotDeadline
	}
	dl := deadline.String()
	chaosT := v1alpha1.Template{Name: name, Type: v1alpha1.TemplateType(f.Kind), Deadline: &dl, EmbedChaos: embed}
	at := phaseStart + f.At
	if at <= 0 {
		return []v1alpha1.Template{chaosT}
	}
	wait := at.String()
	suspend := v1alpha1.Template{Name: unique("wait-"+name, used), Type: v1alpha1.TypeSuspend, Deadline: &wait}
	serial := v1alpha1.Template{Name: unique("at-"+name, used), Type: v1alpha1.TypeSerial, Children: []string{suspend.Name, name}}
	return []v1alpha1.Template{serial, suspend, chaosT}
}

func workflow(name, namespace string, ts []v1alpha1.Template, branches []string, used map[string]bool) (client.Object, error) {
	entry := unique("entry", used)
	ts = append([]v1alpha1.Template{{Name: entry, Type: v1alpha1.TypeParallel, Children: branches}}, ts...)
	w := &v1alpha1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: v1alpha1.KindWorkflow},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "redline"}},
		Spec:       v1alpha1.WorkflowSpec{Entry: entry, Templates: ts},
	}
	if _, err := w.ValidateCreate(context.Background(), w); err != nil {
		return nil, fmt.Errorf("%w: workflow %s: %w", ErrExport, name, err)
	}
	return w, nil
}

// YAML writes the objects as one multi-document YAML file, without the empty status that
// sigs.k8s.io/yaml would otherwise print.
func (e Export) YAML() ([]byte, error) {
	var b bytes.Buffer
	for i, o := range e.Objects {
		j, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("marshal %s: %w", o.GetName(), err)
		}
		var m map[string]any
		if err := json.Unmarshal(j, &m); err != nil {
			return nil, fmt.Errorf("marshal %s: %w", o.GetName(), err)
		}
		delete(m, "status")
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("marshal %s: %w", o.GetName(), err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// Scheme returns a scheme that knows Chaos Mesh's types, for a client.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("chaos mesh scheme: %w", err)
	}
	return s, nil
}

// Apply creates every object through c.
func (e Export) Apply(ctx context.Context, c client.Client) error {
	for _, o := range e.Objects {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %s %s/%s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

// NewClient returns a Kubernetes client for the cluster of a kubeconfig file, knowing Chaos
// Mesh's types.
func NewClient(kubeconfig string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig %s: %w: %w", kubeconfig, ErrKubeconfig, err)
	}
	s, err := Scheme()
	if err != nil {
		return nil, err
	}
	// client.New does not dial the cluster (its REST mapper is lazy): what fails here is the
	// kubeconfig's own settings, such as certificate data that does not parse.
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("use kubeconfig %s: %w: %w", kubeconfig, ErrKubeconfig, err)
	}
	return c, nil
}
