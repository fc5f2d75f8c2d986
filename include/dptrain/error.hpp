#pragma once
// Every failure a user can cause is a dptrain::Error whose message names what
// was wrong (the file, dataset, option or value) and what was expected. Errors
// are caught once, at the top of each rank (src/main.cpp).
#include <stdexcept>
#include <string>

namespace dptrain {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown on every rank at once after a collective phase failed on some rank;
// the message is the first failing rank's, so rank 0 alone needs to print it.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

}  // namespace dptrain
