;; LZ4 block decoder (the block format, not the frame format): what lz4-napi's
;; compress() writes after its u32 size prefix. Decodes into this module's own memory so
;; the restore's decode workers reuse one arena instead of allocating (and page-faulting)
;; a fresh buffer per chunk. Compiled into lz4-binary.ts by scripts/build-wasm.mjs.
;;
;; decode(src, srcEnd, dst, dstEnd) -> bytes written, or -1 if the block is malformed
;; (a length or offset that points outside the input or the output). The caller keeps
;; 16 bytes of slack after srcEnd and after dstEnd: short copies move 16 bytes at once
;; (two i64 loads and stores) and may read or write up to 16 bytes past their end, bytes
;; a later copy overwrites or nobody reads.
(module
  (memory (export "memory") 1)

  ;; 16 bytes from $s to $d (non-overlapping, or $d <= $s - 16).
  (func $copy16 (param $d i32) (param $s i32)
    (i64.store (local.get $d) (i64.load (local.get $s)))
    (i64.store offset=8 (local.get $d) (i64.load offset=8 (local.get $s))))

  (func (export "decode") (param $sp i32) (param $send i32) (param $dst i32) (param $dend i32) (result i32)
    (local $op i32) (local $token i32) (local $lit i32) (local $b i32) (local $off i32) (local $ml i32) (local $m i32) (local $n i32)
    (local.set $op (local.get $dst))
    (block $fail
      (block $done
        (loop $seq
          (br_if $done (i32.ge_u (local.get $sp) (local.get $send)))
          (local.set $token (i32.load8_u (local.get $sp)))
          (local.set $sp (i32.add (local.get $sp) (i32.const 1)))
          ;; literal length: 4 bits, 15 means more bytes follow (each added; 255 continues)
          (local.set $lit (i32.shr_u (local.get $token) (i32.const 4)))
          (if (i32.eq (local.get $lit) (i32.const 15))
            (then
              (loop $more
                (br_if $fail (i32.ge_u (local.get $sp) (local.get $send)))
                (local.set $b (i32.load8_u (local.get $sp)))
                (local.set $sp (i32.add (local.get $sp) (i32.const 1)))
                (local.set $lit (i32.add (local.get $lit) (local.get $b)))
                (br_if $more (i32.eq (local.get $b) (i32.const 255))))))
          (if (local.get $lit)
            (then
              (br_if $fail (i32.gt_u (local.get $lit) (i32.sub (local.get $send) (local.get $sp))))
              (br_if $fail (i32.gt_u (local.get $lit) (i32.sub (local.get $dend) (local.get $op))))
              (if (i32.le_u (local.get $lit) (i32.const 16))
                (then (call $copy16 (local.get $op) (local.get $sp)))
                (else (memory.copy (local.get $op) (local.get $sp) (local.get $lit))))
              (local.set $sp (i32.add (local.get $sp) (local.get $lit)))
              (local.set $op (i32.add (local.get $op) (local.get $lit)))))
          ;; the last sequence has literals only
          (br_if $done (i32.ge_u (local.get $sp) (local.get $send)))
          (br_if $fail (i32.lt_u (i32.sub (local.get $send) (local.get $sp)) (i32.const 2)))
          (local.set $off (i32.load16_u (local.get $sp)))
          (local.set $sp (i32.add (local.get $sp) (i32.const 2)))
          (br_if $fail (i32.eqz (local.get $off)))
          (br_if $fail (i32.gt_u (local.get $off) (i32.sub (local.get $op) (local.get $dst))))
          ;; match length: 4 bits + 4, 15 means more bytes follow
          (local.set $ml (i32.and (local.get $token) (i32.const 15)))
          (if (i32.eq (local.get $ml) (i32.const 15))
            (then
              (loop $more2
                (br_if $fail (i32.ge_u (local.get $sp) (local.get $send)))
                (local.set $b (i32.load8_u (local.get $sp)))
                (local.set $sp (i32.add (local.get $sp) (i32.const 1)))
                (local.set $ml (i32.add (local.get $ml) (local.get $b)))
                (br_if $more2 (i32.eq (local.get $b) (i32.const 255))))))
          (local.set $ml (i32.add (local.get $ml) (i32.const 4)))
          (br_if $fail (i32.gt_u (local.get $ml) (i32.sub (local.get $dend) (local.get $op))))
          (local.set $m (i32.sub (local.get $op) (local.get $off)))
          (if (i32.ge_u (local.get $off) (i32.const 16))
            (then
              (if (i32.le_u (local.get $ml) (i32.const 16))
                (then (call $copy16 (local.get $op) (local.get $m)))
                (else
                  (if (i32.ge_u (local.get $off) (local.get $ml))
                    (then (memory.copy (local.get $op) (local.get $m) (local.get $ml)))
                    (else
                      ;; overlapping, period >= 16: 16 bytes at a time never reads what it writes
                      (local.set $n (i32.const 0))
                      (loop $c16
                        (call $copy16 (i32.add (local.get $op) (local.get $n)) (i32.add (local.get $m) (local.get $n)))
                        (local.set $n (i32.add (local.get $n) (i32.const 16)))
                        (br_if $c16 (i32.lt_u (local.get $n) (local.get $ml))))))))
              (local.set $op (i32.add (local.get $op) (local.get $ml))))
            (else
              ;; period < 16: copy what is there, doubling the distance each time
              (loop $grow
                (local.set $n (i32.sub (local.get $op) (local.get $m)))
                (if (i32.gt_u (local.get $n) (local.get $ml)) (then (local.set $n (local.get $ml))))
                (memory.copy (local.get $op) (local.get $m) (local.get $n))
                (local.set $op (i32.add (local.get $op) (local.get $n)))
                (local.set $ml (i32.sub (local.get $ml) (local.get $n)))
                (br_if $grow (local.get $ml)))))
          (br $seq)))
      (return (i32.sub (local.get $op) (local.get $dst))))
    (i32.const -1)))
