package backend

import (
	"fmt"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/pep440"
	"github.com/skillbox-dev/skillbox/internal/shellquote"
)

// RequirementNames parses requirement strings and returns the normalised
// distribution names to ask the worker about. A malformed requirement is
// errdefs.Invalid naming it.
func RequirementNames(reqs []string) ([]string, error) {
	names := make([]string, 0, len(reqs))
	for _, r := range reqs {
		req, err := pep440.ParseRequirement(r)
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "manifest.yaml: requirements: %q: %v", r, err)
		}
		names = append(names, req.Normalized)
	}
	return names, nil
}

// CheckRequirements compares the manifest's requirement strings with the
// versions the worker reported (name → version; "" for importable but of
// unknown version; nil or absent for missing). It returns
// errdefs.Unavailable listing every unmet requirement, or nil. python names
// the interpreter for the message; hint, when not empty, ends it (how to
// run the skill on an interpreter that has them: HostPythonHint).
func CheckRequirements(reqs []string, packages map[string]*string, python, hint string) error {
	var unmet []string
	for _, r := range reqs {
		req, err := pep440.ParseRequirement(r)
		if err != nil {
			return errdefs.New(errdefs.Invalid, "manifest.yaml: requirements: %q: %v", r, err)
		}
		v, ok := packages[req.Normalized]
		switch {
		case !ok || v == nil:
			unmet = append(unmet, r+" (not installed)")
		case *v == "" && len(req.Specifiers) > 0:
			unmet = append(unmet, r+" (installed, but its version is unknown)")
		case *v != "":
			sat, err := req.SatisfiedBy(*v)
			if err != nil {
				unmet = append(unmet, fmt.Sprintf("%s (installed version %q is not PEP 440)", r, *v))
			} else if !sat {
				unmet = append(unmet, fmt.Sprintf("%s (%s is installed)", r, *v))
			}
		}
	}
	if len(unmet) == 0 {
		return nil
	}
	if hint != "" {
		hint = " (" + hint + ")"
	}
	return errdefs.New(errdefs.Unavailable, "%s lacks requirements of the skill: %s%s", python, strings.Join(unmet, ", "), hint)
}

// PythonEnvVar names the host interpreter the backends run
// (internal/pyinterp's EnvVar, which a test keeps equal).
const PythonEnvVar = "SKILLBOX_PYTHON"

// HostPythonHint is CheckRequirements' hint on a backend that runs the
// skill id on the host's interpreter and builds it no environment
// (process, gvisor without an image): how to point to an interpreter that
// has the requirements, or have one built. ref names the skill as a command
// line would (sandbox.Spec.Ref), quoted here for a shell.
func HostPythonHint(ref string) string {
	return fmt.Sprintf("%s names another interpreter; the linux backend runs the skill on an environment of its own, built with pip: 'skillbox env build %s --backend linux'", PythonEnvVar, shellquote.Word(ref))
}
