package sets

// Severity of a Diagnostic.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Diagnostic is one finding at a precise position of a repository file.
type Diagnostic struct {
	File     string
	Line     int
	Col      int
	Severity Severity
	Code     string // stable identifier, e.g. "invalid-atom", "missing-reason"
	Message  string
}
