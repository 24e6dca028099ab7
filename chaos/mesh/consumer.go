package mesh

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"

	"github.com/redline-dev/redline/chaos"
)

// ConsumerChaosSpec is Redline's ConsumerChaos, shaped like Chaos Mesh's specs: a selector and
// a mode, plus the group to throttle (shorthand for labelSelectors {group: NAME}) and the rate it
// may still consume: "50/s" or "10%" of its normal rate.
type ConsumerChaosSpec struct {
	v1alpha1.PodSelector `json:",inline"`
	Group                string `json:"group,omitempty"`
	Rate                 string `json:"rate"`
}

// consumerRateMax bounds a throttle's absolute rate.
const consumerRateMax = 1e7

func decodeConsumer(spec []byte) (Decoded, []Problem) {
	var s ConsumerChaosSpec
	if ps := strictDecode(spec, &s); len(ps) > 0 {
		return Decoded{}, ps
	}
	var ps []Problem
	if s.Mode == "" {
		s.Mode = v1alpha1.AllMode // a group is one target: every consumer of it
	}
	if s.Group != "" {
		if s.Selector.LabelSelectors == nil {
			s.Selector.LabelSelectors = map[string]string{}
		}
		if g, ok := s.Selector.LabelSelectors["group"]; ok && g != s.Group {
			ps = append(ps, Problem{Path: "group", Message: fmt.Sprintf("group %q and labelSelectors group %q disagree", s.Group, g)})
		}
		s.Selector.LabelSelectors["group"] = s.Group
	}
	if s.Selector.LabelSelectors["group"] == "" {
		ps = append(ps, Problem{Path: "group", Message: "missing; name the consumer group to throttle, like group: settlement"})
	}
	raw, _ := json.Marshal(s)
	d := Decoded{Action: chaos.ActionThrottle, Spec: raw}
	ps = append(ps, localOnly(chaos.KindConsumer, &v1alpha1.PodChaosSpec{ContainerSelector: v1alpha1.ContainerSelector{PodSelector: s.PodSelector}})...)
	sel, sps := selector(s.PodSelector)
	d.Selector, ps = sel, append(ps, sps...)
	rate := strings.TrimSpace(s.Rate)
	switch {
	case rate == "":
		ps = append(ps, Problem{Path: "rate", Message: "missing; want a rate like 50/s or a share like 10% of the group's normal rate"})
	case strings.HasSuffix(rate, "%"):
		v, err := strconv.ParseFloat(strings.TrimSuffix(rate, "%"), 64)
		if err != nil || math.IsNaN(v) || v < 0 || v >= 100 {
			ps = append(ps, Problem{Path: "rate", Message: fmt.Sprintf("want a share in [0%%, 100%%), got %q", rate)})
		}
		d.Params.Percent = v
	case strings.HasSuffix(rate, "/s"):
		v, err := strconv.ParseFloat(strings.TrimSuffix(rate, "/s"), 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > consumerRateMax {
			ps = append(ps, Problem{Path: "rate", Message: fmt.Sprintf("want a rate in [0, %g]/s, got %q", float64(consumerRateMax), rate)})
		}
		d.Params.RatePerSecond = v
	default:
		ps = append(ps, Problem{Path: "rate", Message: fmt.Sprintf("want a rate like 50/s or 10%%, got %q", rate)})
	}
	d.Params.Group = s.Selector.LabelSelectors["group"]
	return d, ps
}
