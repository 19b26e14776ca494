#pragma once
// A small CSV tokenizer shared by the CSV annotation readers (napari, ExoDeepFinder, plain points).
// It reads what spreadsheets, pandas and napari write: RFC 4180 double-quoted fields ("" is a quote,
// commas and line breaks may sit inside quotes), LF, CRLF or lone-CR line ends, a UTF-8 byte-order mark,
// blank lines (skipped). Every row carries the line it starts on, so errors can say
// "points.csv: line 12: ...".
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "microcount/core/error.hpp"

namespace microcount::io::csv {

struct row {
  std::size_t line = 0;             // 1-based line the row starts on
  std::vector<std::string> fields;  // unquoted field texts
};

class tokenizer {
 public:
  // `where` names the source (the file) in error messages. `text` must outlive the tokenizer.
  tokenizer(std::string_view text, std::string where) : text_(text), where_(std::move(where)) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") text_.remove_prefix(3);
  }

  // The next non-blank row; false at the end of the text.
  bool next(row& out) {
    while (pos_ < text_.size()) {
      out.line = line_;
      out.fields.clear();
      bool any_quoted = false;
      for (;;) {
        std::string field;
        bool quoted = false;
        if (pos_ < text_.size() && text_[pos_] == '"') {
          quoted = any_quoted = true;
          read_quoted(field);
        } else {
          read_plain(field);
        }
        out.fields.push_back(std::move(field));
        if (pos_ < text_.size() && text_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (quoted && pos_ < text_.size() && !at_line_end())
          throw error(where_, "line " + std::to_string(line_) + ": text after a closing quote");
        skip_line_end();
        break;
      }
      const bool blank = !any_quoted && out.fields.size() == 1 &&
                         std::all_of(out.fields[0].begin(), out.fields[0].end(),
                                     [](unsigned char c) { return std::isspace(c) != 0; });
      if (!blank) return true;
    }
    return false;
  }

  [[nodiscard]] const std::string& where() const { return where_; }

 private:
  [[nodiscard]] bool at_line_end() const { return text_[pos_] == '\n' || text_[pos_] == '\r'; }

  void skip_line_end() {
    if (pos_ >= text_.size()) return;
    if (text_[pos_] == '\r') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
    ++line_;
  }

  void read_plain(std::string& field) {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',' && !at_line_end()) ++pos_;
    field.assign(text_.substr(start, pos_ - start));
  }

  void read_quoted(std::string& field) {
    const std::size_t opened_on = line_;
    ++pos_;  // opening quote
    for (;;) {
      if (pos_ >= text_.size())
        throw error(where_, "line " + std::to_string(opened_on) + ": quoted field is never closed");
      const char c = text_[pos_++];
      if (c == '"') {
        if (pos_ < text_.size() && text_[pos_] == '"') {
          field += '"';
          ++pos_;
          continue;
        }
        return;
      }
      if (c == '\n' || (c == '\r' && (pos_ >= text_.size() || text_[pos_] != '\n'))) ++line_;
      field += c;
    }
  }

  std::string_view text_;
  std::string where_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
};

// Lower-cased, blank-trimmed text (header names compare this way).
inline std::string normalized(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A header row: column lookup by name, case-insensitive, surrounding blanks ignored.
class header {
 public:
  header() = default;
  explicit header(const row& r) {
    for (const auto& f : r.fields) names_.push_back(normalized(f));
  }
  [[nodiscard]] std::optional<std::size_t> find(std::string_view name) const {
    const std::string key = normalized(name);
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == key) return i;
    return std::nullopt;
  }
  [[nodiscard]] const std::vector<std::string>& names() const { return names_; }
  [[nodiscard]] std::size_t size() const { return names_.size(); }

  // Every data row must have as many fields as the header.
  void require_width(const row& r, const std::string& where) const {
    if (r.fields.size() != names_.size())
      throw error(where, "line " + std::to_string(r.line) + ": " + std::to_string(r.fields.size()) +
                             " fields where the header has " + std::to_string(names_.size()));
  }

 private:
  std::vector<std::string> names_;
};

// Reads the header row; an empty text is an error naming `where`.
inline header read_header(tokenizer& tok) {
  row r;
  if (!tok.next(r)) throw error(tok.where(), "empty file (expected a header row)");
  return header(r);
}

// The field quoted when it holds a comma, quote, line break or edge blanks; as-is otherwise.
inline std::string quoted(std::string_view field) {
  const bool needs = field.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!field.empty() && (std::isspace(static_cast<unsigned char>(field.front())) ||
                                         std::isspace(static_cast<unsigned char>(field.back()))));
  if (!needs) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace microcount::io::csv
