// Awaiting a storage call from a coroutine (service.cpp, remote_write_in.cpp).
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <utility>

namespace metrics::server::detail {

// Awaits a Repository call, resuming the coroutine on its own executor
// whichever thread the storage completes on.
template <class T, class Start>
boost::asio::awaitable<T> await_storage(Start start) {
  co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                 void(std::exception_ptr, T)>(
      [start = std::move(start)](auto handler) mutable {
        auto executor = boost::asio::get_associated_executor(handler);
        // Asio handlers are move-only; storage callbacks are std::function.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        try {
          start([shared, executor](std::exception_ptr err, T value) {
            boost::asio::dispatch(executor, [shared, err, value = std::move(value)]() mutable {
              (*shared)(err, std::move(value));
            });
          });
        } catch (...) {
          // A storage that throws instead of completing: the exception would
          // otherwise escape the io_context's run() and end the I/O thread.
          boost::asio::post(executor, [shared, err = std::current_exception()]() mutable {
            (*shared)(err, T{});
          });
        }
      },
      boost::asio::use_awaitable);
}

}  // namespace metrics::server::detail
