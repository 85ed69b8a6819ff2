# Sourced by the scripts that build images by `docker import` (docker-image.sh,
# docker-base-image.sh): what they share. Needs $rootfs set by the caller.

# Every file ldd names (and the dynamic loader) at its own path, so the binaries run unchanged.
copy_with_libs() {
  local file lib
  for file in "$@"; do
    while read -r lib; do
      [ -n "$lib" ] && [ -e "$lib" ] || continue
      mkdir -p "$rootfs$(dirname "$lib")"
      cp -L "$lib" "$rootfs$lib"
    done < <(ldd "$file" 2>/dev/null | grep -oE '/[^ ]+' | sort -u)
  done
}
