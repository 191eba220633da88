// Package pep440 parses Python requirement specifiers (the PEP 508 subset
// used by Skillware manifests' `requirements` lists) and PEP 440 versions,
// and checks whether a version satisfies a requirement.
//
// Deliberate simplifications:
//   - Environment markers (everything after ";") are kept verbatim in
//     [Requirement.Marker] and never evaluated.
//   - Direct URL requirements ("name @ https://...") are rejected.
//   - Pre-releases (and dev releases) satisfy a requirement only if one of
//     its specifiers names a pre-release version itself ("foo>=2.0b1"), as
//     pip and packaging do by default; a requirement with no specifiers
//     accepts only final releases. There is no "no final release matched, so
//     allow pre-releases" fallback: [Requirement.SatisfiedBy] judges one
//     version at a time.
package pep440
