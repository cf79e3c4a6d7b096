// Package sets understands Gentoo package sets as a compatibility layer keeps
// them: atoms and versions as the Package Manager Specification defines them,
// Portage set files whose entries each document why they are there, EESSI's
// YAML package lists, the managed repository's layout and config, and the
// lint, diff and policy judgements compatbot makes on a pull request.
//
// The package is pure: it reads files through an fs.FS and does no other I/O,
// so the bot, the CLI and the tests judge exactly the same way.
package sets
