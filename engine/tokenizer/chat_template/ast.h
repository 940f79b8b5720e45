#pragma once
// Syntax tree of a chat template (the Jinja subset in docs/chat-template.md).
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/chat_template/value.h"

namespace moelens::chat_template {

struct SourcePos {
    int line = 1, column = 1;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum Kind {
        Literal,    // value
        Name,       // name
        GetAttr,    // args[0].name
        GetItem,    // args[0][args[1]]
        Slice,      // args[0][args[1]:args[2]:args[3]] (null = omitted)
        Call,       // args[0](args[1..], kwargs)
        Filter,     // args[0] | name(args[1..], kwargs)
        Test,       // args[0] is [not] name(args[1..]); negated
        Not, Neg, Pos,
        Binary,     // args[0] op args[1]: + - * / // % ** ~ in "not in"
        Compare,    // args[0] ops[0] args[1] ops[1] args[2] ... (chained)
        And, Or,
        CondExpr,   // args[0] if args[1] else args[2] (args[2] may be null)
        ListLit,    // [args...]
        DictLit,    // {kwargs...} with keys as expressions in args (key, value pairs)
    } kind = Literal;
    SourcePos pos;
    Value value;
    std::string name;
    bool negated = false;
    std::vector<ExprPtr> args;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    std::vector<std::string> ops;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
    enum Kind { Text, Output, If, For, Set, SetAttr, Macro, Break, Continue, Scope } kind = Text;
    SourcePos pos;
    std::string text;                                   // Text
    ExprPtr expr;                                       // Output, Set/SetAttr value, For iterable
    std::vector<std::pair<ExprPtr, Body>> branches;     // If: (condition, body)...
    Body body, else_body;                               // For/If else, Macro, Scope
    std::vector<std::string> targets;                   // For targets, Set name, SetAttr {object, attr}
    ExprPtr filter;                                     // For ... if filter
    std::vector<std::pair<std::string, ExprPtr>> params;  // Macro parameters with defaults
};

struct Macro {
    std::string name;
    const Stmt* definition = nullptr;  // owned by the parsed template
};

struct Template {
    Body body;
};

// Parses template source; throws TokenizerError("chat template line L:C: ...").
Template parse_template(const std::string& source);

}  // namespace moelens::chat_template
