package spec

// Kind tells whether a typed value is a parameter (a JSON value passed
// inline) or an artifact (a file or directory stored by digest).
type Kind uint8

const (
	KindParameter Kind = iota + 1
	KindArtifact
)

func (k Kind) String() string {
	switch k {
	case KindParameter:
		return "parameter"
	case KindArtifact:
		return "artifact"
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
func (t Type) Kind() Kind { return typeKinds[t] }

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
	return false
}
