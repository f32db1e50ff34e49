#!/bin/sh
# The CPU kernels' level files (src/cpu/*_avx2.cpp, *_avx512.cpp, *_amx.cpp) are built with
# instruction sets the CPU may lack; a weak or unique symbol they define (an inline function or
# library template they did not inline) could be picked by the linker for every caller and run
# AVX-512 code on a CPU without it. This fails when any of their objects defines one.
# Arguments: the engine's object files.
status=0
# CTest passes them as one ;-separated list.
for o in $(echo "$*" | tr ";" " "); do
  case "$o" in
    *_avx2.cpp.o|*_avx512.cpp.o|*_amx.cpp.o) ;;
    *) continue ;;
  esac
  # DW.ref.__gxx_personality_v0: a pointer to the C++ exception personality routine (data, the
  # same in every object), not code
  shared=$(nm -C --defined-only "$o" | grep -E ' [WVu] ' | grep -v ' DW\.ref\.')
  if [ -n "$shared" ]; then
    echo "$o defines symbols the linker may share:"
    echo "$shared"
    status=1
  else
    echo "$o: no shared symbols"
  fi
done
exit $status
