# extract.cmake - Turns the examples written in the public headers' comments
# (and the ```c blocks of a Markdown file) into a C file that is compiled, so
# an example that no longer matches the API breaks the build and the test.
#
#   cmake -DIN=<header or .md> -DOUT=<file.c> -P extract.cmake
#
# In a header, an example starts after a comment line " * Example:" and is
# every following line that is " *" alone or " *     code" (four spaces of
# indent); the first other line ends it. A file named here must have one.
file(STRINGS "${IN}" lines)
set(code "/* Extracted from ${IN}: do not edit, edit the source. */\n#include <stdlib.h>\n#include <string.h>\n\n#include \"saga/saga.h\"\n\n")
set(state out)
set(found 0)
foreach(line IN LISTS lines)
  if(IN MATCHES "\\.md$")
    if(state STREQUAL "out" AND line STREQUAL "```c")
      set(state in)
      math(EXPR found "${found} + 1")
    elseif(state STREQUAL "in" AND line STREQUAL "```")
      set(state out)
      string(APPEND code "\n")
    elseif(state STREQUAL "in")
      string(APPEND code "${line}\n")
    endif()
  else()
    if(state STREQUAL "in" AND line MATCHES "^ \\*( *)$")
      string(APPEND code "\n")
    elseif(state STREQUAL "in" AND line MATCHES "^ \\*     (.*)$")
      string(APPEND code "${CMAKE_MATCH_1}\n")
    elseif(line MATCHES "^ \\* Example:$")
      set(state in)
      math(EXPR found "${found} + 1")
    else()
      set(state out)
    endif()
  endif()
endforeach()
if(found EQUAL 0)
  message(FATAL_ERROR "${IN}: no example found")
endif()
# Only rewrite on change, so an unchanged example is not compiled again.
set(tmp "${OUT}.tmp")
file(WRITE "${tmp}" "${code}")
file(COPY_FILE "${tmp}" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${tmp}")
