// Package syntax reads .map files into their syntax tree: a hand-written
// scanner (scanner.go) whose tokens feed a participle grammar (grammar.go),
// lowered to the AST (ast.go) with every node's source span. Syntax errors
// are collected as positioned diagnostics, several per file where the
// parser can resynchronise (errors.go). The formatter (format.go) prints a
// tree back in canonical form; the schema files of the Fast-LLM side use the
// same tokens and expressions (schema.go). Nothing here checks meaning:
// that is dsl/check.
package syntax
