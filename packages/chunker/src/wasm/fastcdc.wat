;; FastCDC cut-point kernels for hoard (see docs/chunker.md).
;;
;; Memory layout:
;;   [0, 1024)     gear table, 256 x i32 (little-endian)
;;   [1024, 2048)  gear table shifted left by one (for the two-byte variant)
;;   [4096, ...)   data window; the host copies bytes here before calling cut*
;;
;; cut2016/cut2020 take absolute memory offsets [start, end) and return the exclusive end
;; of the chunk starting at `start`, exactly as the reference JS in fastcdc.ts does.
(module
  (memory (export "memory") 1 65536)
  (global $min (mut i32) (i32.const 0))
  (global $avg (mut i32) (i32.const 0))
  (global $max (mut i32) (i32.const 0))
  (global $maskS (mut i32) (i32.const 0))
  (global $maskL (mut i32) (i32.const 0))
  (global $maskSls (mut i32) (i32.const 0))
  (global $maskLls (mut i32) (i32.const 0))

  (func (export "configure") (param $min i32) (param $avg i32) (param $max i32) (param $maskS i32) (param $maskL i32)
    (global.set $min (local.get $min))
    (global.set $avg (local.get $avg))
    (global.set $max (local.get $max))
    (global.set $maskS (local.get $maskS))
    (global.set $maskL (local.get $maskL))
    (global.set $maskSls (i32.shl (local.get $maskS) (i32.const 1)))
    (global.set $maskLls (i32.shl (local.get $maskL) (i32.const 1))))

  ;; Table loads are written out inline: V8 in Node 20 does not inline wasm calls, and a
  ;; call per byte costs 7x.

  (func (export "cut2016") (param $start i32) (param $end i32) (result i32)
    (local $n i32) (local $i i32) (local $avgEnd i32) (local $stop i32) (local $h i32)
    (local.set $n (i32.sub (local.get $end) (local.get $start)))
    (if (i32.gt_u (local.get $n) (global.get $max)) (then (local.set $n (global.get $max))))
    (if (i32.le_u (local.get $n) (global.get $min)) (then (return (i32.add (local.get $start) (local.get $n)))))
    (local.set $stop (i32.add (local.get $start) (local.get $n)))
    (local.set $avgEnd (i32.add (local.get $start)
      (select (local.get $n) (global.get $avg) (i32.lt_u (local.get $n) (global.get $avg)))))
    (local.set $i (i32.add (local.get $start) (global.get $min)))
    (block $doneS
      (loop $s
        (br_if $doneS (i32.ge_u (local.get $i) (local.get $avgEnd)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (global.get $maskS))) (then (return (local.get $i))))
        (br $s)))
    (block $doneL
      (loop $l
        (br_if $doneL (i32.ge_u (local.get $i) (local.get $stop)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (global.get $maskL))) (then (return (local.get $i))))
        (br $l)))
    (local.get $stop))

  (func (export "cut2020") (param $start i32) (param $end i32) (result i32)
    (local $n i32) (local $i i32) (local $avgEnd i32) (local $stop i32) (local $h i32)
    (local.set $n (i32.sub (local.get $end) (local.get $start)))
    (if (i32.gt_u (local.get $n) (global.get $max)) (then (local.set $n (global.get $max))))
    (if (i32.le_u (local.get $n) (global.get $min)) (then (return (i32.add (local.get $start) (local.get $n)))))
    (local.set $stop (i32.add (local.get $start) (local.get $n)))
    (local.set $avgEnd (i32.add (local.get $start)
      (select (local.get $n) (global.get $avg) (i32.lt_u (local.get $n) (global.get $avg)))))
    (local.set $i (i32.add (local.get $start) (global.get $min)))
    ;; two bytes per step below avgSize, with the strict mask
    (block $doneS
      (loop $s
        (br_if $doneS (i32.gt_u (i32.add (local.get $i) (i32.const 2)) (local.get $avgEnd)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 2)) (i32.load offset=1024 (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (global.get $maskSls)))
          (then (return (i32.add (local.get $i) (i32.const 1)))))
        (local.set $h (i32.add (local.get $h) (i32.load (i32.shl (i32.load8_u offset=1 (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (if (i32.eqz (i32.and (local.get $h) (global.get $maskS))) (then (return (local.get $i))))
        (br $s)))
    (if (i32.lt_u (local.get $i) (local.get $avgEnd))
      (then
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (global.get $maskS))) (then (return (local.get $i))))))
    ;; two bytes per step up to maxSize, with the loose mask
    (block $doneL
      (loop $l
        (br_if $doneL (i32.gt_u (i32.add (local.get $i) (i32.const 2)) (local.get $stop)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 2)) (i32.load offset=1024 (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (global.get $maskLls)))
          (then (return (i32.add (local.get $i) (i32.const 1)))))
        (local.set $h (i32.add (local.get $h) (i32.load (i32.shl (i32.load8_u offset=1 (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (if (i32.eqz (i32.and (local.get $h) (global.get $maskL))) (then (return (local.get $i))))
        (br $l)))
    (if (i32.lt_u (local.get $i) (local.get $stop))
      (then
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (global.get $maskL))) (then (return (local.get $i))))))
    (local.get $stop))
)
