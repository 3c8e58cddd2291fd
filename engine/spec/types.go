package spec

// Kind tells whether a typed value is a parameter (a JSON value passed
// inline) or an artifact (a file or directory stored by digest).
type Kind uint8

const (
	KindParameter Kind = iota + 1
	KindArtifact
	// KindArtifactList is a list of artifacts of one type: a loop's fan-in
	// of an artifact output.
	KindArtifactList
)

func (k Kind) String() string {
	switch k {
	case KindParameter:
		return "parameter"
	case KindArtifact:
		return "artifact"
	case KindArtifactList:
		return "artifact list"
	}
	return "unknown"
}

// Type is the declared type of a parameter or artifact. Parameter types are
// lower case, artifact types are capitalised as KFP spells them.
type Type string

// Parameter types.
const (
	TypeString Type = "string"
	TypeInt    Type = "int"
	TypeFloat  Type = "float"
	TypeBool   Type = "bool"
	TypeList   Type = "list"
	TypeObject Type = "object"
)

// Artifact types.
const (
	TypeArtifact              Type = "Artifact"
	TypeDataset               Type = "Dataset"
	TypeModel                 Type = "Model"
	TypeMetrics               Type = "Metrics"
	TypeClassificationMetrics Type = "ClassificationMetrics"
	TypeHTML                  Type = "HTML"
	TypeMarkdown              Type = "Markdown"
)

var typeKinds = map[Type]Kind{
	TypeString: KindParameter, TypeInt: KindParameter, TypeFloat: KindParameter,
	TypeBool: KindParameter, TypeList: KindParameter, TypeObject: KindParameter,
	TypeArtifact: KindArtifact, TypeDataset: KindArtifact, TypeModel: KindArtifact,
	TypeMetrics: KindArtifact, TypeClassificationMetrics: KindArtifact,
	TypeHTML: KindArtifact, TypeMarkdown: KindArtifact,
}

// Kind returns the kind of t, or 0 when t is not a known type.
func (t Type) Kind() Kind {
	if k, ok := typeKinds[t]; ok {
		return k
	}
	if e, ok := t.Elem(); ok && e.Kind() == KindArtifact {
		return KindArtifactList
	}
	return 0
}

// ListOf is the type of a list of t: TypeList for a parameter type,
// "list<T>" for an artifact type T, and t itself for an artifact list
// (lists of artifacts are flat: a loop over a loop's artifacts gathers
// them all, as KFP's driver does).
func ListOf(t Type) Type {
	switch t.Kind() {
	case KindArtifact:
		return "list<" + t + ">"
	case KindArtifactList:
		return t
	}
	return TypeList
}

// Elem returns the element type of an artifact list type "list<T>".
func (t Type) Elem() (Type, bool) {
	s := string(t)
	if len(s) > 6 && s[:5] == "list<" && s[len(s)-1] == '>' {
		return Type(s[5 : len(s)-1]), true
	}
	return "", false
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { return t.Kind() != 0 }

// Assignable reports whether a value of type from may feed an input of
// type to: the same type; an int into a float; any artifact into a generic
// Artifact input, and a generic Artifact into any artifact input.
func Assignable(from, to Type) bool {
	if from == to {
		return true
	}
	if from == TypeInt && to == TypeFloat {
		return true
	}
	if from.Kind() == KindArtifact && to.Kind() == KindArtifact {
		return from == TypeArtifact || to == TypeArtifact
	}
	if from.Kind() == KindArtifactList && to.Kind() == KindArtifactList {
		fe, _ := from.Elem()
		te, _ := to.Elem()
		return Assignable(fe, te)
	}
	return false
}
